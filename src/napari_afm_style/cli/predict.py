"""``afm-style predict``: atom positions from a stack, written as XYZ."""

from __future__ import annotations

import argparse
import json
import logging

from ..predict import DEFAULT_MODEL
from ._options import add_device_option, add_progress_option, unit_interval

__all__ = ["configure", "run"]

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="Δf stack file or folder (any supported format)")
    p.add_argument("-o", "--output", required=True, help="output geometry (.xyz, extended XYZ with confidence)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="shipped model name (pure, handcrafted, style, hybrid) or a weights/checkpoint path")
    p.add_argument("--threshold", type=unit_interval, default=None,
                   help="minimum peak probability of an atom (default: the model's)")
    add_device_option(p, "the predictor")
    add_progress_option(p)
    p.add_argument("--tta", type=int, default=None, choices=(1, 2, 4, 8),
                   help="mirrored/rotated views of the stack whose maps are averaged "
                        "(default: the model's calibrated choice)")


def run(args) -> int:
    from ..io import write_atoms
    from ..predict import predict_maps
    from ._inputs import read_input_stack

    stack = read_input_stack(args.stack)
    maps = predict_maps(stack, args.model, device=args.device, test_time_augmentation=args.tta,
                       progress=not args.no_progress)
    atoms = maps.atoms(args.threshold)
    # extended XYZ keeps only scalar info entries: add flat copies of the essentials
    atoms.info["preprocessing_json"] = json.dumps(atoms.info.get("preprocessing", {}))
    out = write_atoms(atoms, args.output)
    symbols = atoms.get_chemical_symbols()
    counts = ", ".join(f"{el}: {symbols.count(el)}" for el in maps.elements)
    print(f"{args.stack}: {len(atoms)} atoms ({counts}) at threshold {atoms.info['threshold']:.2f}, "
          f"model {maps.info['predictor_model']!r}")
    print(f"frame: {maps.info['frame']}; heights: {maps.info['height_frame']}")
    if "warning" in maps.info["preprocessing"]:
        log.warning(f"warning: {maps.info['preprocessing']['warning']}")
    print(f"wrote {out}")
    return 0
