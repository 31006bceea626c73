"""The ``afm-style`` command line.

One convention: subcommand ``NAME`` is the module ``napari_afm_style.cli.NAME`` (dashes
become underscores) with ``configure(parser)`` and ``run(args) -> int``. This module only
registers them, with their one-line help, so ``afm-style --help`` stays fast: a
subcommand's module is imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

#: subcommand -> one-line help
SUBCOMMANDS = {
    "info": "print a stack's parameters (any supported format)",
    "convert": "convert a stack file or folder to the project's .npz",
    "resim": "re-simulate a geometry with the scan of a given stack (ppafm)",
    "generate": "generate a simulated training set (sharded .npz)",
    "predict": "predict atom positions from a stack and write XYZ",
    "train-predictor": "train the structure-discovery model",
    "calibrate-predictor": "choose a predictor's threshold and averaged views on validation shards",
    "translate": "style-translate stacks (forward sim→exp, backward exp→sim)",
    "train-translator": "train the CycleGAN style translator",
    "order": "tetrahedral order S_k/S_g of a geometry vs theory",
    "experiment": "the four-regime training experiment",
    "demo": "run the whole pipeline headless on the bundled sample",
    "gui": "open napari with every widget docked on the bundled sample",
}


def command_module(name: str):
    """The module of subcommand ``name`` (``configure`` and ``run``)."""
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afm-style",
        description="Structure discovery and style translation for CO-tip NC-AFM Δf stacks.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == only:
            command_module(name).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    only = command if command in SUBCOMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if args.version:
        from .. import __version__

        print(f"afm-style (napari-afm-style) {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 0
    output = getattr(args, "output", None)
    if output and not Path(output).resolve().parent.is_dir():
        # a typo in -o must not silently create a tree of folders
        print(f"afm-style {args.command}: error: {output}: the folder {Path(output).parent} does not exist; "
              "create it first", file=sys.stderr)
        return 2
    run = command_module(args.command).run
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, FileExistsError, IsADirectoryError, PermissionError, RuntimeError) as e:
        print(f"afm-style {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
