"""``afm-style info``: print a stack's parameters, or the devices networks and simulations can use."""

from __future__ import annotations

import argparse
import sys

__all__ = ["configure", "run"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?",
                   help="stack file or folder (.npz, .sxm or folder of .sxm, .gwy, .tif, .xsf)")
    p.add_argument("--devices", action="store_true",
                   help="list the torch devices (for --device) and OpenCL platforms (for --opencl-platform)")


def run(args) -> int:
    if args.devices:
        _print_devices()
    if args.file is None:
        if not args.devices:
            print("afm-style info: error: give a stack file or folder, or --devices", file=sys.stderr)
            return 2  # a usage error
        return 0
    from ..io import read_stack

    stack = read_stack(args.file)
    print(f"{args.file}")
    print(stack.summary())
    return 0


def _print_devices() -> None:
    from .._device import torch_devices
    from ..simulate.opencl import opencl_platforms

    print("networks (--device auto|cpu|cuda[:N]):")
    for d in torch_devices():
        print(f"  {d['name']:8s} {d['description']}")
    print("simulation, ppafm on OpenCL (--opencl-platform N):")
    platforms = opencl_platforms()
    if not platforms:
        print("  none found: install an OpenCL driver (CPU: Debian's pocl-opencl-icd)")
    for p in platforms:
        state = "" if p["builds"] else "  [cannot compile kernels here]"
        print(f"  {p['index']:<8d} {p['name']}: {', '.join(p['devices']) or 'no devices'}{state}")
