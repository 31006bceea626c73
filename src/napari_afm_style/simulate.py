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
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .stack import HEIGHT_FRAME_ABSOLUTE, AFMStack

__all__ = [
    "TipParameters",
    "EngineSettings",
    "DEFAULT_CHARGES_E",
    "SUBSTRATE_NUMBERS",
    "simulate",
    "simulate_straightforward",
    "scan_like",
    "scan_from_ppafm_info",
    "tip_from_ppafm_info",
    "default_charges",
    "opencl_environment",
    "opencl_ready",
    "MULTIPOLES",
]

#: Point charges (e) used when a geometry carries none: a point-charge model of water
#: (O −0.8 e, H +0.4 e, neutral molecules, close to TIP3P's −0.834/+0.417); every other
#: element (Au, ...) is neutral.
DEFAULT_CHARGES_E = {8: -0.8, 1: 0.4}

#: Atomic numbers treated as substrate (metal slabs): their force field is cached between
#: calls, and :func:`scan_like` centres and places the scan on the other atoms.
SUBSTRATE_NUMBERS = (13, 26, 27, 28, 29, 45, 46, 47, 77, 78, 79)

#: ppafm's conversion from eV/Å² to N/m (its internal stiffness unit).
EVA2_PER_N_PER_M = 16.0217662

#: The gap (Å) between the topmost adsorbate atom and the closest slice when nothing else
#: says where a scan sits: the closest height of the theory scans of water on Au(111) is
#: 1.6–2.8 Å above their topmost atom (a dangling H), ≈ 2.9 Å above their topmost O;
#: 2.5 Å gives the sharp, partly repulsive CO-tip contrast of those scans.
DEFAULT_CLOSEST_GAP_A = 2.5

#: the tip charge multipoles ppafm offers
MULTIPOLES = ("s", "pz", "dz2")

#: ppafm's Δf convolution kernel keeps its weights in a local array of 64.
_MAX_DF_STEPS = 64


# ----------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TipParameters:
    """The probe (CO tip) of ppafm's probe-particle model.

    The defaults are ppafm's CO tip (AFMulator defaults): lateral stiffness 0.25 N/m,
    radial stiffness 30 N/m, probe 3 Å below the anchor, a ``dz2`` quadrupole of −0.1 e.

    Parameters
    ----------
    k_xy_N_per_m : float
        Lateral (bending) stiffness of the probe particle in N/m (ppafm ``klat``;
        ``tipStiffness[0:2]``; ppafm's XYZ comments store it as ``kxy`` in −eV/Å²).
    k_radial_N_per_m : float
        Radial (bond-length) stiffness in N/m (ppafm ``krad``, ``tipStiffness[3]``).
    r0_A : tuple of 3 floats
        ppafm's ``tipR0``: lateral equilibrium offset (x, y) of the probe particle from
        the anchor (a tilted tip) and the anchor–probe bond length (Å). The probe hangs
        ``sqrt(r0_z² − r0_x² − r0_y²)`` below the anchor.
    multipole : {'s', 'pz', 'dz2'}
        Tip charge distribution, realised as ppafm's point charges on the z axis
        (s: one charge; pz: ±10q at ±0.1 Å; dz2: q·(100, −200, 100) at +0.1, 0, −0.1 Å).
    charge_e : float
        Multipole strength in e (ppafm ``charge``).
    probe_element : int
        Atomic number of the probe particle (8: the O of CO), for its Lennard-Jones
        parameters.
    """

    k_xy_N_per_m: float = 0.25
    k_radial_N_per_m: float = 30.0
    r0_A: tuple = (0.0, 0.0, 3.0)
    multipole: str = "dz2"
    charge_e: float = -0.1
    probe_element: int = 8

    def __post_init__(self):
        for name in ("k_xy_N_per_m", "k_radial_N_per_m"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"TipParameters.{name} must be a positive stiffness in N/m, got {v!r}")
            object.__setattr__(self, name, v)
        r0 = tuple(float(v) for v in np.asarray(self.r0_A, dtype=float).reshape(-1))
        if len(r0) != 3 or not np.all(np.isfinite(r0)):
            raise ValueError(f"TipParameters.r0_A must be (x, y, bond length) in Å, got {self.r0_A!r}")
        if r0[2] <= 0 or r0[0] ** 2 + r0[1] ** 2 >= r0[2] ** 2:
            raise ValueError(
                "TipParameters.r0_A: the bond length r0_A[2] must be positive and longer than "
                f"the lateral offset hypot(r0_A[0], r0_A[1]); got {r0}"
            )
        object.__setattr__(self, "r0_A", r0)
        if self.multipole not in MULTIPOLES:
            raise ValueError(f"TipParameters.multipole must be one of {MULTIPOLES}, got {self.multipole!r}")
        q = float(self.charge_e)
        if not np.isfinite(q):
            raise ValueError(f"TipParameters.charge_e must be finite, got {q!r}")
        object.__setattr__(self, "charge_e", q)
        object.__setattr__(self, "probe_element", int(self.probe_element))

    @classmethod
    def co_tip(cls) -> TipParameters:
        """ppafm's CO tip (the default)."""
        return cls()

    @property
    def probe_depth_A(self) -> float:
        """How far (Å) the probe particle hangs below the anchor at equilibrium."""
        x, y, r = self.r0_A
        return math.sqrt(r * r - x * x - y * y)

    def point_charges(self) -> tuple[list[float], list[float]]:
        """ppafm's ``Qs`` (e) and ``QZs`` (Å above the probe particle)."""
        q = self.charge_e
        if self.multipole == "s":
            return [q, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]
        if self.multipole == "pz":
            return [10 * q, -10 * q, 0.0, 0.0], [0.1, -0.1, 0.0, 0.0]
        return [100 * q, -200 * q, 100 * q, 0.0], [0.1, 0.0, -0.1, 0.0]

    def stiffness_vector(self) -> list[float]:
        """ppafm's ``tipStiffness`` (x, y, z, radial) in N/m."""
        return [self.k_xy_N_per_m, self.k_xy_N_per_m, 0.0, self.k_radial_N_per_m]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["r0_A"] = list(self.r0_A)
        return d


@dataclass(frozen=True)
class EngineSettings:
    """How the force field is evaluated (the physics stays ppafm's).

    Parameters
    ----------
    points_per_A : float
        Density (points per Å, in x, y and z) of the force-field grid that the probe
        particle is relaxed in; 10 is ppafm's default.
    box : {'scan', 'structure'}
        'scan': the grid covers only the volume the probe particle visits, padded by
        ``lateral_pad_A`` and ``z_pad_A``; 'structure': it covers every atom and the scan,
        padded by 3 Å (the straightforward call).
    near_cutoff_A : float or None
        Atoms closer than this to the probe-particle volume are evaluated on the fine grid;
        the others (their field is smooth there) on a coarse grid of ``far_points_per_A``,
        interpolated onto the fine one. None: every atom on the fine grid.
    far_points_per_A : float
        Density of the coarse grid of the far atoms.
    max_scan_step_A : float
        Largest z step of the approach (ppafm's ``dz``); smaller steps are chosen so that
        the heights of ``like`` fall on the grid.
    """

    points_per_A: float = 10.0
    box: str = "scan"
    lateral_pad_A: float = 0.8
    z_pad_A: float = 0.4
    near_cutoff_A: float | None = 4.5
    far_points_per_A: float = 2.0
    max_scan_step_A: float = 0.1

    def __post_init__(self):
        if self.box not in ("scan", "structure"):
            raise ValueError(f"EngineSettings.box must be 'scan' or 'structure', got {self.box!r}")
        for name in ("points_per_A", "far_points_per_A"):
            v = float(getattr(self, name))
            if not (0 < v <= 40):
                raise ValueError(f"EngineSettings.{name} must be in (0, 40] points per Å, got {v!r}")
        for name in ("lateral_pad_A", "z_pad_A"):
            v = float(getattr(self, name))
            if not (v >= 0 and np.isfinite(v)):
                raise ValueError(f"EngineSettings.{name} must be ≥ 0 Å, got {v!r}")
        if self.near_cutoff_A is not None and not float(self.near_cutoff_A) > 0:
            raise ValueError(f"EngineSettings.near_cutoff_A must be positive or None, got {self.near_cutoff_A!r}")
        if not (0.005 <= float(self.max_scan_step_A) <= 0.5):
            raise ValueError(f"EngineSettings.max_scan_step_A must be in [0.005, 0.5] Å, got {self.max_scan_step_A!r}")

    @classmethod
    def straightforward(cls) -> EngineSettings:
        """ppafm's default resolution (10 points/Å) over a box covering the whole
        structure, every atom on that grid."""
        return cls(points_per_A=10.0, box="structure", near_cutoff_A=None)

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------
# Charges and validation
# ----------------------------------------------------------------------------------------
def default_charges(numbers) -> np.ndarray:
    """Point charges (e) for atomic numbers: ``DEFAULT_CHARGES_E``, 0 for other elements."""
    numbers = np.asarray(numbers, dtype=int)
    q = np.zeros(numbers.shape, dtype=np.float64)
    for z, value in DEFAULT_CHARGES_E.items():
        q[numbers == z] = value
    return q


def _atoms_arrays(atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(positions, numbers, charges, charge source) of ``atoms``, validated."""
    if atoms is None or not hasattr(atoms, "get_positions"):
        raise ValueError(f"atoms must be an ase.Atoms geometry, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError("the geometry has no atoms; nothing to simulate")
    pos = np.asarray(atoms.get_positions(), dtype=np.float64)
    if not np.all(np.isfinite(pos)):
        bad = int(np.sum(~np.all(np.isfinite(pos), axis=1)))
        raise ValueError(f"{bad} atom position(s) are NaN or infinite; fix or drop those atoms")
    numbers = np.asarray(atoms.numbers, dtype=int)
    n_types = _n_atom_types()
    unknown = sorted({int(z) for z in numbers if z < 1 or z > n_types})
    if unknown:
        raise ValueError(
            f"atomic numbers {unknown} have no Lennard-Jones parameters in ppafm (1–{n_types})"
        )
    charges = np.asarray(atoms.get_initial_charges(), dtype=np.float64)
    if not np.all(np.isfinite(charges)):
        raise ValueError("atom charges contain NaN or infinite values")
    if np.any(charges != 0):
        source = "geometry (atoms.get_initial_charges())"
    else:
        charges = default_charges(numbers)
        source = "default point charges " + ", ".join(
            f"Z={z}: {q:+g} e" for z, q in DEFAULT_CHARGES_E.items()
        ) + ", others 0"
    return pos, numbers, charges, source


_N_TYPES: int | None = None


def _n_atom_types() -> int:
    global _N_TYPES
    if _N_TYPES is None:
        from importlib import resources

        text = resources.files("ppafm").joinpath("defaults/atomtypes.ini").read_text()
        _N_TYPES = sum(1 for ln in text.splitlines() if len(ln.split()) >= 5)
    return _N_TYPES


# ----------------------------------------------------------------------------------------
# Scan plan: our frames -> ppafm's scan window
# ----------------------------------------------------------------------------------------
@dataclass
class _ScanPlan:
    dz_A: float
    df_steps: int
    amplitude_eff_A: float
    scan_window: tuple
    scan_dim: tuple
    #: for every height of ``like``: (fine slice j0, fine slice j1, weight of j1)
    slices: list
    interpolated: bool
    pp_lo: np.ndarray  # lower corner (x, y, z) of the volume the probe particle visits
    pp_hi: np.ndarray

    def to_dict(self) -> dict:
        (x0, y0, z0), (x1, y1, z1) = self.scan_window
        return {
            "scan_step_z_A": self.dz_A,
            "df_steps": self.df_steps,
            "amplitude_effective_A": self.amplitude_eff_A,
            "ppafm_scan_window_A": [[x0, y0, z0], [x1, y1, z1]],
            "ppafm_scan_dim": list(self.scan_dim),
            "heights_interpolated": self.interpolated,
        }


def _choose_dz(heights: np.ndarray, amplitude_A: float, max_step: float) -> tuple[float, bool]:
    """z step of the approach and whether heights must be interpolated.

    The largest step ≤ ``max_step`` that puts every height on the grid (preferring one that
    makes the peak-to-peak amplitude a whole number of steps); else ``max_step`` with
    linear interpolation between slices. ppafm's Δf kernel takes at most 64 steps per
    oscillation, which bounds the step from below.
    """
    min_step = 2 * amplitude_A / _MAX_DF_STEPS
    if min_step > max_step:
        return min_step, heights.size > 1
    offsets = heights[0] - heights
    base = max_step if heights.size == 1 else float(np.min(np.diff(-heights)))
    valid = []
    for m in range(1, 201):
        dz = base / m
        if dz > max_step * (1 + 1e-9):
            continue
        if dz < max(max_step / 5, min_step):
            break
        t = offsets / dz
        if np.all(np.abs(t - np.round(t)) < 1e-4 * max(1.0, float(np.max(t)))):
            valid.append(dz)
    if not valid:
        return max_step, True
    valid = [round(dz, 9) for dz in valid]  # 0.1, not 0.09999999999999964
    for dz in valid:
        n = 2 * amplitude_A / dz
        if abs(n - round(n)) < 1e-3 and dz >= valid[0] / 2:
            return dz, False
    return valid[0], False


def _plan_scan(like: AFMStack, tip: TipParameters, height_offset_A: float, max_step: float) -> _ScanPlan:
    heights = like.heights_A + height_offset_A
    dz, interpolated = _choose_dz(heights, like.amplitude_A, max_step)
    # ppafm's df_steps·dz is the peak-to-peak amplitude (its AFMulator.amplitude).
    df_steps = min(_MAX_DF_STEPS, max(2, int(round(2 * like.amplitude_A / dz))))
    amp_eff = df_steps * dz / 2
    span = (heights[0] - heights[-1]) / dz
    n_fine = int(round(span)) + 1 if not interpolated else int(math.ceil(span - 1e-9)) + 1
    nz = n_fine - 1 + df_steps
    depth = tip.probe_depth_A
    # Height label of fine slice j (ppafm's plot convention) = z_top - dz*df_steps + A - j*dz
    # - depth = z_top - A_eff - depth - j*dz, so the anchor's top z is:
    z_top = heights[0] + amp_eff + depth
    z_bottom = z_top - nz * dz
    ny, nx = like.shape[1:]
    rx, ry = tip.r0_A[0], tip.r0_A[1]
    x0 = like.origin_A[0] - rx
    y0 = like.origin_A[1] - ry
    x1 = x0 + (nx - 1) * like.pixel_size_A
    y1 = y0 + (ny - 1) * like.pixel_size_A
    slices = []
    for h in heights:
        t = (heights[0] - h) / dz
        j0 = int(math.floor(t + 1e-6))
        w = t - j0
        if w < 1e-6 or j0 + 1 >= n_fine:
            slices.append((min(j0, n_fine - 1), min(j0, n_fine - 1), 0.0))
        else:
            slices.append((j0, j0 + 1, float(w)))
    # probe particle (unrelaxed) visits anchor + (rx, ry, -depth) for anchor z from z_top
    # down to z_bottom + dz (ppafm steps nz times from the top).
    pp_lo = np.array([like.origin_A[0], like.origin_A[1], z_bottom + dz - depth])
    pp_hi = np.array([like.x_A[-1], like.y_A[-1], z_top - depth])
    return _ScanPlan(
        dz_A=float(dz),
        df_steps=df_steps,
        amplitude_eff_A=float(amp_eff),
        scan_window=((float(x0), float(y0), float(z_bottom)), (float(x1), float(y1), float(z_top))),
        scan_dim=(int(nx), int(ny), int(nz)),
        slices=slices,
        interpolated=bool(interpolated),
        pp_lo=pp_lo,
        pp_hi=pp_hi,
    )


def _box_lvec(lo: np.ndarray, hi: np.ndarray, points_per_A: float) -> tuple[np.ndarray, tuple]:
    """ppafm lattice vectors of a grid covering ``lo``…``hi`` (one cell of margin).

    Grid points sit on the canonical lattice ``k / points_per_A`` of the geometry's frame,
    whatever the box: two boxes (a small fast one and a whole-structure one, or two
    overlapping windows) sample the force field at the same points, and a scan that is
    mirror-symmetric about a lattice plane samples a mirror-symmetric grid.
    """
    k_lo = np.floor(np.asarray(lo) * points_per_A + 1e-9).astype(int) - 1
    k_hi = np.ceil(np.asarray(hi) * points_per_A - 1e-9).astype(int) + 1
    n = k_hi - k_lo + 1
    # ppafm's force-field kernel runs on a global size rounded up to its work-group size
    # (32) and lets item number nx*ny*nz write one point past the buffer: a grid whose size
    # is a multiple of 32 (x multiple of 4, y of 8) keeps that write inside.
    n[0] = -(-n[0] // 4) * 4
    n[1] = -(-n[1] // 8) * 8
    size = n / points_per_A
    origin = k_lo / points_per_A
    lvec = np.array([origin, [size[0], 0, 0], [0, size[1], 0], [0, 0, size[2]]], dtype=np.float64)
    return lvec, tuple(int(v) for v in n)


def _distance_to_box(pos: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    d = np.maximum(0.0, np.maximum(lo - pos, pos - hi))
    return np.sqrt(np.sum(d * d, axis=1))


# ----------------------------------------------------------------------------------------
# OpenCL environment (one per process)
# ----------------------------------------------------------------------------------------
_ENV_LOCK = threading.RLock()
_ENV: dict[str, Any] = {}


def _platform_builds(platform) -> bool:
    import pyopencl as cl

    try:
        ctx = cl.Context(properties=[(cl.context_properties.PLATFORM, platform)])
        cl.Program(ctx, "__kernel void k(__global float* a){ a[get_global_id(0)] = 1.0f; }").build()
        return True
    except Exception:  # a platform that cannot compile for this CPU (e.g. old PoCL + new CPU)
        return False


def opencl_environment(platform: int | None = None, cache_dir=None) -> dict:
    """Set up ppafm's OpenCL environment once per process and describe it.

    Parameters
    ----------
    platform : int, optional
        OpenCL platform index. Default: ``$NAPARI_AFM_STYLE_OPENCL_PLATFORM`` if set, else
        the first platform that can compile a kernel on this machine.
    cache_dir : path, optional
        Where PoCL keeps compiled kernels (sets ``POCL_CACHE_DIR`` before the first
        compilation; default PoCL's own, ``~/.cache/pocl/kcache``).

    Returns
    -------
    dict
        platform index, name and version, device names, kernel cache folder, seconds spent.
    """
    with _ENV_LOCK:
        if _ENV:
            return dict(_ENV["info"])
        t0 = time.perf_counter()
        if cache_dir is not None:
            os.environ["POCL_CACHE_DIR"] = str(cache_dir)
        try:
            import pyopencl as cl
            from ppafm.ocl import oclUtils
        except ImportError as e:  # pragma: no cover - ppafm is a dependency
            raise RuntimeError(f"ppafm's OpenCL simulator is not importable ({e}); install ppafm, pyopencl and reikna") from e
        try:
            platforms = cl.get_platforms()
        except Exception as e:
            raise RuntimeError(
                "no OpenCL platform found; on a CPU-only machine install PoCL "
                "(Debian: apt-get install pocl-opencl-icd; or pip install pocl-binary-distribution)"
            ) from e
        if platform is None and os.environ.get("NAPARI_AFM_STYLE_OPENCL_PLATFORM"):
            platform = int(os.environ["NAPARI_AFM_STYLE_OPENCL_PLATFORM"])
        if platform is None:
            usable = [i for i, p in enumerate(platforms) if _platform_builds(p)]
            if not usable:
                raise RuntimeError(
                    "no OpenCL platform can compile kernels on this machine ("
                    + "; ".join(f"{p.name} {p.version}" for p in platforms)
                    + "). The PoCL bundled with pyopencl (LLVM 14) does not know recent CPUs "
                    "('unknown target CPU generic'): install Debian's pocl-opencl-icd or pick a "
                    "platform with NAPARI_AFM_STYLE_OPENCL_PLATFORM."
                )
            platform = usable[0]
        if not 0 <= platform < len(platforms):
            raise RuntimeError(f"OpenCL platform {platform} does not exist ({len(platforms)} found)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            oclUtils.init_env(i_platform=platform)
        from ppafm import common

        p = platforms[platform]
        _ENV["info"] = {
            "platform_index": platform,
            "platform": f"{p.name} {p.version}".strip(),
            "devices": [d.name for d in p.get_devices()],
            "pocl_cache_dir": os.environ.get("POCL_CACHE_DIR", os.path.expanduser("~/.cache/pocl/kcache")),
            "setup_s": round(time.perf_counter() - t0, 3),
        }
        _ENV["type_params"] = common.loadSpecies(None)
        _ENV["afmulator"] = None
        return dict(_ENV["info"])


def opencl_ready() -> bool:
    """True once this process has set up OpenCL and its AFMulator (later calls are fast)."""
    return bool(_ENV)


def _afmulator():
    """The process-wide AFMulator (created on first use; reconfigured for every call)."""
    from ppafm.ocl.AFMulator import AFMulator

    if _ENV.get("afmulator") is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _ENV["afmulator"] = AFMulator(
                pixPerAngstrome=5,
                lvec=np.array([[0, 0, 0], [4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]]),
                scan_dim=(4, 4, 4),
                scan_window=((1.0, 1.0, 4.0), (2.0, 2.0, 5.0)),
                df_steps=2,
                rho=None,
                npbc=(0, 0, 0),
            )
    return _ENV["afmulator"]


# ----------------------------------------------------------------------------------------
# Force field and scan on the shared AFMulator
# ----------------------------------------------------------------------------------------
def _configure(afm, plan: _ScanPlan, tip: TipParameters, like: AFMStack, lvec: np.ndarray, ppa: float) -> None:
    from ppafm import common

    afm.iZPP = tip.probe_element
    afm.tipR0 = list(tip.r0_A)
    afm.f0Cantilever = like.f0_Hz
    afm.kCantilever = like.k_N_per_m
    afm.scanner.stiffness = np.array(tip.stiffness_vector(), dtype=np.float32) / -common.eVA_Nm
    qs, qzs = tip.point_charges()
    afm.setQs(qs, qzs)
    # setScanWindow also sets the Δf weights from f0 and k (Giessibl's formula, ppafm).
    afm.setScanWindow(plan.scan_window, plan.scan_dim, plan.df_steps)
    afm.setLvec(lvec, ppa)
    ff = afm.forcefield
    # as AFMulator.prepareFF: new device buffers when the grid size changed
    if (afm._old_nDim != ff.nDim).any() or ff.cl_FE is None:
        ff.tryReleaseBuffers()
        ff.prepareBuffers()
        afm._old_nDim = ff.nDim.copy()


def _ff_eval(ff, pos: np.ndarray, numbers: np.ndarray, charges: np.ndarray, probe: int) -> np.ndarray:
    """ppafm's Lennard-Jones + point-charge force field of some atoms on the grid of the
    ``ForceField_LJC`` ``ff`` (flat float32 array in the device layout: x fastest, then y,
    z, and the 4 components Fx, Fy, Fz, E)."""
    from ppafm import common

    n = int(np.prod(ff.nDim[:3]))
    if len(pos) == 0:
        return np.zeros(n * 4, dtype=np.float32)
    reas = common.getAtomsREA(probe, numbers, _ENV["type_params"], alphaFac=-1.0)
    clj = common.REA2LJ(reas)
    # The kernel reads atoms in blocks of its work-group size (32) without a bounds check:
    # pad with atoms that add exactly zero (no charge, no Lennard-Jones, far away).
    n_pad = -(-len(pos) // _WORK_GROUP) * _WORK_GROUP
    atoms4 = np.zeros((n_pad, 4), dtype=np.float32)
    atoms4[:, :3] = 1.0e4
    atoms4[: len(pos), :3] = pos
    atoms4[: len(pos), 3] = charges
    clj_pad = np.zeros((n_pad, 2), dtype=np.float32)
    clj_pad[: len(pos)] = clj
    ff.prepareBuffers(atoms4, clj_pad)
    ff.nAtoms = np.int32(len(pos))
    out = np.empty(n * 4, dtype=np.float32)
    # zero charges add exactly zero to the electrostatic terms of this kernel
    ff.run_evalLJC_QZs_noPos(FE=out, bCopy=True, bFinish=True)
    return out


def _linear_weights(x_fine: np.ndarray, origin: float, step: float, n: int) -> np.ndarray:
    """Matrix (len(x_fine), n) of linear-interpolation weights from a grid origin + k·step."""
    u = (x_fine - origin) / step
    k = np.clip(np.floor(u).astype(int), 0, n - 2)
    w = u - k
    W = np.zeros((x_fine.size, n), dtype=np.float64)
    rows = np.arange(x_fine.size)
    W[rows, k] = 1 - w
    W[rows, k + 1] = w
    return W


def _far_field(lvec: np.ndarray, ndim: tuple, pos, numbers, charges, tip: TipParameters,
               far_points_per_A: float) -> np.ndarray:
    """Force field of far atoms on a coarse grid, interpolated (trilinear) onto the fine
    grid ``lvec``/``ndim``; flat float32 in the device layout."""
    from ppafm.ocl import field as FFcl

    ff = _ENV.get("ff_far")
    if ff is None:
        ff = _ENV["ff_far"] = FFcl.ForceField_LJC()
        ff.nDim = None
        ff.cl_FE = None
    h_fine = np.array([lvec[1, 0], lvec[2, 1], lvec[3, 2]]) / np.asarray(ndim)
    x_fine = [lvec[0, i] + h_fine[i] * np.arange(ndim[i]) for i in range(3)]
    hc = 1.0 / far_points_per_A
    clvec, n = _box_lvec(np.array([x[0] for x in x_fine]), np.array([x[-1] for x in x_fine]), far_points_per_A)
    n = np.asarray(n)
    lo = clvec[0]
    old = None if ff.nDim is None else tuple(int(v) for v in ff.nDim[:3])
    ff.initSampling(clvec, nDim=[int(v) for v in n])
    if old != tuple(int(v) for v in n) or ff.cl_FE is None:
        if ff.cl_FE is not None:
            ff.cl_FE.release()
        ff.cl_FE = None
        ff.prepareBuffers()
    qs, qzs = tip.point_charges()
    ff.setQs(qs, qzs)
    coarse = _ff_eval(ff, pos, numbers, charges, tip.probe_element).reshape(n[2], n[1], n[0], 4)
    Wx, Wy, Wz = (_linear_weights(x_fine[i], lo[i], hc, n[i]) for i in range(3))
    fine = np.einsum("zk,yj,xi,kjid->zyxd", Wz, Wy, Wx, coarse.astype(np.float64), optimize=True)
    return fine.astype(np.float32).reshape(-1)


def _scan(afm, ff_flat: np.ndarray) -> np.ndarray:
    """Relaxed scan + Δf conversion; returns ppafm's (nx, ny, n_fine) array."""
    import pyopencl as cl

    ff = afm.forcefield
    cl.enqueue_copy(ff.queue, ff.cl_FE, ff_flat)
    afm.prepareScanner()
    return afm.evalAFM()


def _probe_excursion(afm, plan: _ScanPlan, lvec: np.ndarray, ndim: tuple) -> tuple[bool, np.ndarray]:
    """Whether the relaxed probe particle stayed inside the force-field grid, one cell
    away from its edges (ppafm's texture wraps around there), and how far (Å, per axis)
    it went beyond the unrelaxed probe volume."""
    paths = afm.scanner.downloadPaths().reshape(-1, 3)
    pmin, pmax = paths.min(axis=0), paths.max(axis=0)
    h = np.array([lvec[1, 0], lvec[2, 1], lvec[3, 2]]) / np.asarray(ndim)
    lo = lvec[0] + h
    hi = lvec[0] + (np.asarray(ndim) - 2) * h
    inside = bool(np.all(pmin >= lo) and np.all(pmax <= hi))
    beyond = np.maximum(np.maximum(plan.pp_lo - pmin, pmax - plan.pp_hi), 0.0)
    return inside, beyond


_WORK_GROUP = 32
_MAX_BOX_ATTEMPTS = 3


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------
def _check_like(like) -> AFMStack:
    if not isinstance(like, AFMStack):
        raise ValueError(f"like must be an AFMStack (the scan to reproduce), got {type(like).__name__}")
    return like


def _resolve_height_offset(like: AFMStack, pos: np.ndarray, numbers: np.ndarray, height_offset_A):
    """Offset (Å) from ``like``'s height frame to the geometry's frame, and how it was chosen."""
    if height_offset_A is not None:
        off = float(height_offset_A)
        if not np.isfinite(off):
            raise ValueError(f"height_offset_A must be finite, got {height_offset_A!r}")
        return off, f"given: {off:+.3f} Å"
    if like.heights_are_absolute:
        return 0.0, "absolute (geometry frame)"
    top = _top_adsorbate_z(pos, numbers, like)
    off = top + 3.0 - float(like.heights_A.min())
    return off, (
        f"like's heights are relative ({like.height_frame}); closest slice placed 3.0 Å above "
        f"the topmost atom under the window (z = {top:.3f} Å): offset {off:+.3f} Å"
    )


def _top_adsorbate_z(pos, numbers, like: AFMStack | None = None) -> float:
    ads = ~np.isin(numbers, SUBSTRATE_NUMBERS)
    sel = ads if ads.any() else np.ones_like(ads)
    if like is not None:
        inside = (
            (pos[:, 0] >= like.x_A[0] - 1) & (pos[:, 0] <= like.x_A[-1] + 1)
            & (pos[:, 1] >= like.y_A[0] - 1) & (pos[:, 1] <= like.y_A[-1] + 1)
        )
        if (sel & inside).any():
            sel = sel & inside
    return float(pos[sel, 2].max())


def _validate_geometry_vs_scan(pos, numbers, plan: _ScanPlan, heights_geo: np.ndarray) -> None:
    d = _distance_to_box(pos, plan.pp_lo, plan.pp_hi)
    if d.min() > 8.0:
        raise ValueError(
            f"the scan window of like (x {plan.pp_lo[0]:.2f}…{plan.pp_hi[0]:.2f} Å, "
            f"y {plan.pp_lo[1]:.2f}…{plan.pp_hi[1]:.2f} Å, heights {heights_geo[-1]:.2f}…"
            f"{heights_geo[0]:.2f} Å) is far from the atoms (nearest atom {d.min():.1f} Å away): "
            "the image would be empty. Check that the geometry and the stack share a frame "
            "(origin_A, heights_A), or give a height offset."
        )
    # atoms under the window, or within an atomic radius of its edge
    inside = (
        (pos[:, 0] >= plan.pp_lo[0] - 1.0) & (pos[:, 0] <= plan.pp_hi[0] + 1.0)
        & (pos[:, 1] >= plan.pp_lo[1] - 1.0) & (pos[:, 1] <= plan.pp_hi[1] + 1.0)
    )
    if inside.any():
        top = float(pos[inside, 2].max())
        if plan.pp_lo[2] < top + 0.5:
            raise ValueError(
                f"the closest tip height ({heights_geo[-1]:.2f} Å, lower turning point "
                f"{plan.pp_lo[2]:.2f} Å) reaches into the atoms under the window (topmost at "
                f"z = {top:.2f} Å): the probe would crash. Put the closest height at least "
                "~2 Å above the topmost atom (or correct the height offset)."
            )


def simulate(atoms, like: AFMStack, tip: TipParameters | None = None, *,
             settings: EngineSettings | None = None, height_offset_A: float | None = None) -> AFMStack:
    """Simulate a CO-tip Δf stack of ``atoms`` on exactly the scan of ``like``.

    Parameters
    ----------
    atoms : ase.Atoms
        Geometry in Å (same frame as ``like``). Charges come from
        ``atoms.get_initial_charges()``; if all are zero, ``DEFAULT_CHARGES_E`` is used
        (water point charges O −0.8 e, H +0.4 e; other elements neutral).
    like : AFMStack
        The scan to reproduce: heights, pixel size, origin, shape, amplitude, f0 and k are
        copied; its data is not used.
    tip : TipParameters, optional
        Probe parameters (default: ppafm's CO tip).
    settings : EngineSettings, optional
        Force-field evaluation (default: the fast path, see the module docstring).
    height_offset_A : float, optional
        Added to ``like.heights_A`` to get z in the geometry's frame. Default 0 for
        absolute heights; for relative heights the closest slice is placed 3 Å above the
        topmost atom under the window (recorded in the metadata).

    Returns
    -------
    AFMStack
        Δf in Hz (index 0 farthest) with ``like``'s geometry; the metadata records the tip,
        the engine settings, the ppafm scan window and timings.

    Raises
    ------
    ValueError
        Empty geometry, NaN positions, unknown elements, or a scan far from the atoms or
        reaching into them.
    """
    tip = TipParameters() if tip is None else tip
    if not isinstance(tip, TipParameters):
        raise ValueError(f"tip must be a TipParameters, got {type(tip).__name__}")
    settings = EngineSettings() if settings is None else settings
    like = _check_like(like)
    pos, numbers, charges, charge_source = _atoms_arrays(atoms)
    offset, offset_note = _resolve_height_offset(like, pos, numbers, height_offset_A)
    plan = _plan_scan(like, tip, offset, settings.max_scan_step_A)
    heights_geo = like.heights_A + offset
    _validate_geometry_vs_scan(pos, numbers, plan, heights_geo)

    t0 = time.perf_counter()
    opencl_environment()
    ppa = float(settings.points_per_A)
    pads = np.array([settings.lateral_pad_A, settings.lateral_pad_A, settings.z_pad_A])
    for attempt in range(_MAX_BOX_ATTEMPTS):
        lvec, ndim = _grid_box(plan, settings, pos, pads)
        if settings.near_cutoff_A is None:
            near = np.ones(len(pos), dtype=bool)
        else:
            # distance to the probe-particle volume grown by the one cell it interpolates in
            grow = 1.0 / ppa
            near = _distance_to_box(pos, plan.pp_lo - grow, plan.pp_hi + grow) < float(settings.near_cutoff_A)
        with _ENV_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            afm = _afmulator()
            _configure(afm, plan, tip, like, lvec, ppa)
            t1 = time.perf_counter()
            ff_flat = _ff_eval(afm.forcefield, pos[near], numbers[near], charges[near], tip.probe_element)
            t2 = time.perf_counter()
            if not near.all():
                ff_flat += _far_field(lvec, ndim, pos[~near], numbers[~near], charges[~near], tip,
                                      settings.far_points_per_A)
            t3 = time.perf_counter()
            X = _scan(afm, ff_flat)
            inside, beyond = _probe_excursion(afm, plan, lvec, ndim)
            t4 = time.perf_counter()
        if inside or settings.box != "scan" or attempt == _MAX_BOX_ATTEMPTS - 1:
            break
        # The relaxed probe left the padded grid (a soft tip bent far at close range): redo
        # with pads that hold the excursion seen, plus margin (it may reach further once the
        # field beyond the old edge is there).
        pads = np.maximum(pads + 0.5, beyond + 2.0 / ppa + 0.5)
    timings = {"setup_s": t1 - t0, "near_field_s": t2 - t1, "far_field_s": t3 - t2, "scan_s": t4 - t3,
               "total_s": t4 - t0}
    data = _pick_slices(X, plan)
    return _result(like, data, tip, settings, plan, lvec, ndim, charge_source, offset, offset_note,
                   n_near=int(near.sum()), n_total=len(pos), timings=timings,
                   extra={"probe_inside_grid": inside, "grid_pads_A": pads.tolist(), "box_attempts": attempt + 1})


def _grid_box(plan: _ScanPlan, settings: EngineSettings, pos: np.ndarray, pads: np.ndarray):
    if settings.box == "scan":
        return _box_lvec(plan.pp_lo - pads, plan.pp_hi + pads, float(settings.points_per_A))
    lo = np.minimum(pos.min(axis=0), plan.pp_lo) - 3.0
    hi = np.maximum(pos.max(axis=0), plan.pp_hi) + 3.0
    return _box_lvec(lo, hi, float(settings.points_per_A))


def simulate_straightforward(atoms, like: AFMStack, tip: TipParameters | None = None, *,
                             height_offset_A: float | None = None) -> AFMStack:
    """The plain ppafm call for the same scan: a fresh ``AFMulator`` at 10 points/Å over a
    box covering the whole structure, all atoms, ``AFMulator.__call__``. Slow; kept to
    verify :func:`simulate` and for the benchmark."""
    from ppafm.ocl.AFMulator import AFMulator

    tip = TipParameters() if tip is None else tip
    like = _check_like(like)
    settings = EngineSettings.straightforward()
    pos, numbers, charges, charge_source = _atoms_arrays(atoms)
    offset, offset_note = _resolve_height_offset(like, pos, numbers, height_offset_A)
    plan = _plan_scan(like, tip, offset, settings.max_scan_step_A)
    _validate_geometry_vs_scan(pos, numbers, plan, like.heights_A + offset)
    t0 = time.perf_counter()
    opencl_environment()
    lvec, ndim = _grid_box(plan, settings, pos, np.zeros(3))
    qs, qzs = tip.point_charges()
    with _ENV_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        afm = AFMulator(
            pixPerAngstrome=int(settings.points_per_A),
            lvec=lvec,
            scan_dim=plan.scan_dim,
            scan_window=plan.scan_window,
            iZPP=tip.probe_element,
            QZs=qzs,
            Qs=qs,
            rho=None,
            df_steps=plan.df_steps,
            tipR0=list(tip.r0_A),
            tipStiffness=tip.stiffness_vector(),
            npbc=(0, 0, 0),
            f0Cantilever=like.f0_Hz,
            kCantilever=like.k_N_per_m,
        )
        X = afm(pos, numbers, charges)
        del afm
    timings = {"total_s": time.perf_counter() - t0}
    data = _pick_slices(X, plan)
    return _result(like, data, tip, settings, plan, lvec, ndim, charge_source, offset, offset_note,
                   n_near=len(pos), n_total=len(pos), timings=timings,
                   extra={"engine_call": "ppafm AFMulator(...)(xyzs, Zs, qs)"})


def _pick_slices(X: np.ndarray, plan: _ScanPlan) -> np.ndarray:
    fine = np.asarray(X, dtype=np.float64).transpose(2, 1, 0)  # (n_fine, ny, nx), 0 = top
    out = np.empty((len(plan.slices),) + fine.shape[1:], dtype=np.float32)
    for i, (j0, j1, w) in enumerate(plan.slices):
        out[i] = fine[j0] if w == 0 else (1 - w) * fine[j0] + w * fine[j1]
    return out


def _result(like, data, tip, settings, plan, lvec, ndim, charge_source, offset, offset_note, *,
            n_near, n_total, timings, extra) -> AFMStack:
    import ppafm

    meta = copy.deepcopy(like.metadata)
    history = meta.pop("history", [])
    for key in ("instrument", "file", "channel", "source_file"):
        meta.pop(key, None)
    meta.update(
        source="simulation (ppafm OpenCL, probe-particle model)",
        simulated_like=str(like.metadata.get("source", like.metadata.get("file", "stack"))),
        tip=tip.to_dict(),
        engine=dict(
            settings.to_dict(),
            ppafm_version=getattr(ppafm, "__version__", "unknown"),
            opencl=_ENV.get("info", {}).get("platform", ""),
            force_field_box_A=[list(map(float, lvec[0])), [float(lvec[1, 0]), float(lvec[2, 1]), float(lvec[3, 2])]],
            force_field_grid=list(ndim),
            atoms_on_fine_grid=n_near,
            atoms_total=n_total,
            timings_s={k: round(v, 4) for k, v in timings.items()},
            **plan.to_dict(),
            **extra,
        ),
        charges=charge_source,
        height_offset_A=float(offset),
        height_placement=offset_note,
    )
    meta["history"] = history + [{"step": "simulate", "engine": settings.box, "points_per_A": settings.points_per_A}]
    return like.replace(data=data, metadata=meta)


# ----------------------------------------------------------------------------------------
# Scan templates
# ----------------------------------------------------------------------------------------
def scan_like(atoms, n_heights: int = 10, height_step_A: float = 0.1, pixel_size_A: float = 0.125,
              size_px=(128, 128), closest_height_A: float | None = None, center_xy_A=None,
              f0_Hz: float = 30300.0, k_N_per_m: float = 1800.0, amplitude_A: float = 1.0) -> AFMStack:
    """An empty (zero-data) stack describing a scan over ``atoms``, to pass to :func:`simulate`.

    Parameters
    ----------
    atoms : ase.Atoms
        Geometry (Å).
    n_heights, height_step_A : int, float
        Number of slices and spacing (Å); index 0 is the farthest.
    pixel_size_A : float
        Lateral pixel size (Å).
    size_px : (ny, nx)
        Image size in pixels (the order of ``data.shape[1:]``).
    closest_height_A : float, optional
        Height of the closest slice (probe-particle z at oscillation centre). Default: the
        topmost adsorbate atom (non-substrate) + ``DEFAULT_CLOSEST_GAP_A`` (2.5 Å).
    center_xy_A : (x, y), optional
        Centre of the window. Default: centre of the adsorbate's bounding box.
    f0_Hz, k_N_per_m, amplitude_A : float
        Cantilever resonance, stiffness and zero-to-peak amplitude.
    """
    pos, numbers, _, _ = _atoms_arrays(atoms)
    n_heights = int(n_heights)
    if n_heights < 1:
        raise ValueError(f"n_heights must be at least 1, got {n_heights}")
    if not (np.isfinite(height_step_A) and height_step_A > 0):
        raise ValueError(f"height_step_A must be positive, got {height_step_A!r}")
    ny, nx = (int(v) for v in np.broadcast_to(np.asarray(size_px), (2,)))
    if ny < 1 or nx < 1:
        raise ValueError(f"size_px must be positive (ny, nx), got {size_px!r}")
    ads = ~np.isin(numbers, SUBSTRATE_NUMBERS)
    sel = ads if ads.any() else np.ones_like(ads)
    if center_xy_A is None:
        center = (pos[sel, :2].min(axis=0) + pos[sel, :2].max(axis=0)) / 2
    else:
        center = np.asarray(center_xy_A, dtype=float).reshape(2)
    if closest_height_A is None:
        closest_height_A = float(pos[sel, 2].max()) + DEFAULT_CLOSEST_GAP_A
    origin = center - np.array([(nx - 1), (ny - 1)]) * pixel_size_A / 2
    heights = closest_height_A + height_step_A * np.arange(n_heights)[::-1]
    return _scan_template(heights, (ny, nx), pixel_size_A, origin, f0_Hz, k_N_per_m, amplitude_A,
                          source="scan template (scan_like)")


def _scan_template(heights, shape_yx, pixel_size_A, origin, f0_Hz, k_N_per_m, amplitude_A,
                   **metadata) -> AFMStack:
    """An all-zero stack that only carries a scan (absolute heights, Å) for ``simulate``."""
    return AFMStack(
        np.zeros((len(heights), *shape_yx), dtype=np.float32),
        heights,
        pixel_size_A,
        origin,
        f0_Hz=f0_Hz,
        k_N_per_m=k_N_per_m,
        amplitude_A=amplitude_A,
        metadata={**metadata, "height_frame": HEIGHT_FRAME_ABSOLUTE},
    )


def scan_from_ppafm_info(atoms, pixel_size_A: float = 0.125, height_step_A: float = 0.1,
                         f0_Hz: float = 30300.0, k_N_per_m: float = 1800.0) -> AFMStack:
    """Scan template from the ppafm comment of a geometry (``atoms.info['ppafm_scan']``).

    ppafm's window ``[[x0, y0, z0], [x1, y1, z1]]`` holds the anchor's pixel centres
    (``linspace``, both ends included) and its z range; ``Amplitude`` is ppafm's
    peak-to-peak amplitude (``df_steps · dz``), so the stack's ``amplitude_A`` is half of
    it and it has ``(z1 − z0 − Amplitude) / dz + 1`` slices. The tip offset ``tip R0``
    moves the probe particle (our pixel frame) away from the anchor.
    """
    info = getattr(atoms, "info", {}).get("ppafm_scan")
    if not info or "scan_window_A" not in info:
        raise ValueError(
            "the geometry has no ppafm scan parameters (atoms.info['ppafm_scan'] with "
            "'scan_window_A'); read a ppafm XYZ with napari_afm_style.io.read_atoms"
        )
    (x0, y0, z0), (x1, y1, z1) = info["scan_window_A"]
    amp_pp = float(info.get("amplitude_A", 2.0))
    tip = tip_from_ppafm_info(atoms)
    nx = int(round((x1 - x0) / pixel_size_A)) + 1
    ny = int(round((y1 - y0) / pixel_size_A)) + 1
    nz = int(round((z1 - z0) / height_step_A))
    df_steps = int(round(amp_pp / height_step_A))
    n_heights = nz - df_steps + 1
    if n_heights < 1 or nx < 1 or ny < 1:
        raise ValueError(f"ppafm scan parameters give an empty scan: {info}")
    amp = df_steps * height_step_A / 2
    top = z1 - amp - tip.probe_depth_A
    heights = top - height_step_A * np.arange(n_heights)
    origin = (x0 + tip.r0_A[0], y0 + tip.r0_A[1])
    return _scan_template(heights, (ny, nx), pixel_size_A, origin, f0_Hz, k_N_per_m, amp,
                          source="scan template (ppafm XYZ comment)", ppafm_scan=dict(info), tip=tip.to_dict())


def tip_from_ppafm_info(atoms) -> TipParameters:
    """CO tip with the ``tip R0`` and ``kxy`` of a ppafm XYZ comment (``kxy`` is ppafm's
    internal lateral stiffness, −k/16.02 eV/Å² per N/m; defaults where absent)."""
    info = getattr(atoms, "info", {}).get("ppafm_scan") or {}
    kw = {}
    if "tipR0_A" in info and len(info["tipR0_A"]) == 3:
        kw["r0_A"] = tuple(info["tipR0_A"])
    if "kxy" in info and float(info["kxy"]) < 0:
        kw["k_xy_N_per_m"] = -float(info["kxy"]) * EVA2_PER_N_PER_M
    return TipParameters(**kw)
