"""``afm-style resim GEOMETRY --like STACK -o OUT.npz``: re-simulate a geometry on a stack's scan.

A prediction (a geometry with per-atom confidences, as ``afm-style predict`` writes it)
goes the way of the Re-simulate dock and the demo (:func:`napari_afm_style.resimulation.
resimulate_prediction`): unsure atoms left out, the tip placed from the confident atoms or
the stack's height frame, the structure completed (Au(111), missing H), and the agreement
with the scan printed. Any other geometry (or ``--height-offset``, ``--straightforward``)
is simulated as it is."""

from __future__ import annotations

import logging
import time

from ..resimulation import DEFAULT_MIN_CONFIDENCE, resimulate_prediction
from ..simulate import MULTIPOLES, TipParameters, opencl_ready, simulate, simulate_straightforward

from ._options import unit_interval

__all__ = ["configure", "run"]

log = logging.getLogger(__name__)


def configure(p) -> None:
    p.add_argument("geometry", help="geometry file (.xyz / extended XYZ / ppafm XYZ / any ASE format)")
    p.add_argument("--like", required=True, help="stack whose scan to reproduce (any supported format)")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    p.add_argument("--tip-k-xy", type=float, default=TipParameters.k_xy_N_per_m,
                   help="lateral stiffness of the CO tip in N/m (ppafm klat; default %(default)s)")
    p.add_argument("--tip-k-radial", type=float, default=TipParameters.k_radial_N_per_m,
                   help="radial stiffness in N/m (default %(default)s)")
    p.add_argument("--tip-charge", type=float, default=TipParameters.charge_e,
                   help="tip multipole charge in e (default %(default)s)")
    p.add_argument("--tip-multipole", choices=MULTIPOLES, default=TipParameters.multipole,
                   help="tip charge multipole (default %(default)s)")
    p.add_argument("--tip-r0", type=float, nargs=3, metavar=("X", "Y", "R"), default=None,
                   help="probe offset x, y and bond length in Å (ppafm tipR0; default 0 0 3)")
    p.add_argument("--height-offset", type=float, default=None,
                   help="Å added to the stack's heights to reach the geometry's frame (needed for "
                        "relative heights; default: closest slice 3 Å above the topmost atom)")
    p.add_argument("--min-confidence", type=unit_interval, default=DEFAULT_MIN_CONFIDENCE,
                   help="for a prediction: atoms below this confidence are left out (default %(default)s)")
    p.add_argument("--straightforward", action="store_true",
                   help="use the plain ppafm call (10 points/Å, whole structure; slow) instead of the fast path")


def run(args) -> int:
    from ..io import read_atoms, read_stack, write_stack

    atoms = read_atoms(args.geometry)
    like = read_stack(args.like)
    tip_kw = dict(k_xy_N_per_m=args.tip_k_xy, k_radial_N_per_m=args.tip_k_radial,
                  charge_e=args.tip_charge, multipole=args.tip_multipole)
    if args.tip_r0 is not None:
        tip_kw["r0_A"] = tuple(args.tip_r0)
    tip = TipParameters(**tip_kw)
    is_prediction = "confidence" in atoms.arrays and args.height_offset is None and not args.straightforward
    if not is_prediction and not like.heights_are_absolute and args.height_offset is None:
        log.warning(f"note: {args.like} has relative heights ({like.height_frame}); placing its closest "
                    "slice 3.0 Å above the topmost atom (use --height-offset to choose)")
    first = not opencl_ready()
    log.info(f"re-simulating {len(atoms)} atoms on a {like.shape[0]}×{like.shape[1]}×{like.shape[2]} scan"
             + (" (setting up OpenCL; the first run on a machine also compiles the kernels)" if first else "") + " …")
    t0 = time.perf_counter()
    if is_prediction:
        res = resimulate_prediction(like, atoms, min_confidence=args.min_confidence, tip=tip)
        out = res.simulated
        out.metadata["resimulation"] = {"closest_slice_ncc": res.closest_ncc,
                                        "tip_placement": res.placement.get("note", ""),
                                        "left_out": int(res.placement["left_out"]),
                                        "min_confidence": float(args.min_confidence)}
        path = write_stack(out, args.output)
        print(f"wrote {path} ({time.perf_counter() - t0:.1f} s): a prediction, {res.placement['left_out']} atoms "
              f"under confidence {args.min_confidence:g} left out, Au(111) and missing H added; tip: "
              f"{res.placement.get('note', '')}; closest-slice NCC with the scan {res.closest_ncc:.3f}")
        return 0
    if args.straightforward:
        out = simulate_straightforward(atoms, like, tip, height_offset_A=args.height_offset)
    else:
        out = simulate(atoms, like, tip, height_offset_A=args.height_offset)
    path = write_stack(out, args.output)
    print(f"wrote {path} ({time.perf_counter() - t0:.1f} s; heights: {out.metadata['height_placement']}; "
          f"Δf {out.data.min():.3g} … {out.data.max():.3g} Hz)")
    return 0
