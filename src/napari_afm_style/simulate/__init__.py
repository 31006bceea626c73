"""Simulated CO-tip NC-AFM Δf stacks of a geometry, with ppafm's OpenCL engine.

:func:`simulate` re-simulates a geometry on exactly the scan of a given stack (``like``):
same heights, pixel size, origin, shape, amplitude and cantilever, so the simulated stack
overlays the measured one pixel for pixel. The physics is ppafm's probe-particle model
(Lennard-Jones + point-charge electrostatics, relaxed CO tip, Giessibl's Δf conversion);
this module only maps our frames onto ppafm's scan window and makes the call fast.

Frames (see ``docs/simulation.md``)
-----------------------------------
* Lateral: pixel ``(iy, ix)`` is the probe particle (O of the CO tip) at
  ``x = origin_A[0] + ix * pixel_size_A``, ``y = origin_A[1] + iy * pixel_size_A`` at
  its equilibrium before relaxation. The tip anchor sits at that point minus the tip's
  lateral offset ``r0_A[:2]``.
* Heights: z of the probe particle at the centre of its oscillation, before relaxation:
  ppafm's scan-window z of the anchor minus the anchor–probe z distance, plus the
  amplitude (ppafm's own plot labels). Index 0 is the farthest slice.

Speed
-----
A straightforward ppafm call evaluates the force field at 10 points/Å over a box covering
the whole structure. :func:`simulate` evaluates it at the same resolution, on the same
lattice points, only over the volume the probe particle visits (plus a small pad), with
the atoms near that volume on the fine grid and the field of all other atoms (smooth
there) on a coarse grid interpolated onto it (:class:`EngineSettings`); the OpenCL set-up
and the ``AFMulator`` are made once per process. :func:`simulate_straightforward` is the
plain call, kept for verification and the benchmark (``benchmarks/bench_resim.py``).

Layout: :mod:`.parameters` (tip, engine settings, charges), :mod:`.scan_plan` (frames →
ppafm's scan window), :mod:`.opencl` (the per-process OpenCL set-up), :mod:`.engine`
(the two engines) and :mod:`.templates` (scan templates).
"""

from .engine import place_tip_over_prediction, simulate, simulate_straightforward
from .opencl import opencl_environment, opencl_ready
from .parameters import (
    DEFAULT_CHARGES_E,
    DEFAULT_CLOSEST_GAP_A,
    EVA2_PER_N_PER_M,
    MULTIPOLES,
    SUBSTRATE_NUMBERS,
    EngineSettings,
    TipParameters,
    default_charges,
)
from .templates import scan_from_ppafm_info, scan_like, tip_from_ppafm_info

__all__ = [
    "TipParameters",
    "EngineSettings",
    "DEFAULT_CHARGES_E",
    "SUBSTRATE_NUMBERS",
    "DEFAULT_CLOSEST_GAP_A",
    "EVA2_PER_N_PER_M",
    "MULTIPOLES",
    "simulate",
    "simulate_straightforward",
    "place_tip_over_prediction",
    "scan_like",
    "scan_from_ppafm_info",
    "tip_from_ppafm_info",
    "default_charges",
    "opencl_environment",
    "opencl_ready",
]
