"""``afm-style convert``: a stack file or folder to the project's ``.npz`` or a multi-page TIFF."""

from __future__ import annotations

import argparse

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="stack file or folder in any supported format")
    p.add_argument("-o", "--output", required=True,
                   help="output file: .npz (the project's format), or .tif/.tiff (float32 pages, Hz, for ImageJ/Fiji)")
    p.add_argument("--height-offset", type=float, default=0.0,
                   help="add this many Å to every height (place a relative stack in a geometry frame)")


def run(args) -> int:
    from ..io import read_stack, write_stack

    stack = read_stack(args.file)
    if args.height_offset:
        stack = stack.with_height_offset(args.height_offset)
    out = write_stack(stack, args.output)
    print(f"wrote {out}")
    return 0
