"""``afm-style info``: print a stack's parameters."""

from __future__ import annotations

import argparse

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="stack file or folder (.npz, .sxm or folder of .sxm, .gwy, .tif, .xsf)")


def run(args) -> int:
    from ..io import read_stack

    stack = read_stack(args.file)
    print(f"{args.file}")
    print(stack.summary())
    return 0
