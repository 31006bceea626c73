"""The ``afm-style`` command line.

Each subcommand lives beside the computation it drives: a module offers
``configure_parser(parser)`` and ``run_from_args(args) -> int``; this file only
registers them, so ``afm-style --help`` stays fast (modules import lazily).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

#: subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "info": ("napari_afm_style._cli_basic", "print a stack's parameters (any supported format)"),
    "convert": ("napari_afm_style._cli_basic", "convert a stack file or folder to the project's .npz"),
    "resim": ("napari_afm_style.simulate", "re-simulate a geometry with the scan of a given stack (ppafm)"),
    "generate": ("napari_afm_style.training.generate", "generate a simulated training set (sharded .npz)"),
    "predict": ("napari_afm_style.predict", "predict atom positions from a stack and write XYZ"),
    "train-predictor": ("napari_afm_style.training.train_predictor", "train the structure-discovery model"),
    "calibrate-predictor": ("napari_afm_style.training.evaluation",
                            "choose a predictor's threshold and averaged views on validation shards"),
    "translate": ("napari_afm_style.translate", "style-translate stacks (forward sim→exp, backward exp→sim)"),
    "train-translator": ("napari_afm_style.training.train_translator", "train the CycleGAN style translator"),
    "order": ("napari_afm_style.order", "tetrahedral order S_k/S_g of a geometry vs theory"),
    "experiment": ("napari_afm_style.training.experiment", "the four-regime training experiment"),
    "demo": ("napari_afm_style.demo", "run the whole pipeline headless on the bundled sample"),
    "gui": ("napari_afm_style.demo", "open napari with every widget docked on the bundled sample"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afm-style",
        description="Structure discovery and style translation for CO-tip NC-AFM Δf stacks.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (modname, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == only:
            mod = importlib.import_module(modname)
            configure = getattr(mod, f"configure_{name.replace('-', '_')}_parser", None) or mod.configure_parser
            configure(p)
            p.set_defaults(_module=modname)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    only = command if command in SUBCOMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

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
    mod = importlib.import_module(args._module)
    name = args.command.replace("-", "_")
    run = (getattr(mod, f"run_{name}_command", None) or getattr(mod, f"run_{name}", None)
           or mod.run_from_args)
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
