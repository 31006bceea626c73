"""The ``afm-style`` command line.

One convention: subcommand ``NAME`` is the module ``napari_afm_style.cli.NAME`` (dashes
become underscores) with ``configure(parser)`` and ``run(args) -> int``. This module only
registers them, with their one-line help, so ``afm-style --help`` stays fast: a
subcommand's module is imported only when it runs.

Exit status: 0 on success, 1 for a runtime error (a bad or missing file, a job that
failed), 2 for a usage error (unknown option, missing argument), 130 when interrupted.
Messages go to stderr through :mod:`logging` (logger ``napari_afm_style``); ``-q`` keeps
only warnings and errors and hides progress bars, ``-v`` adds debug messages and the
traceback of a runtime error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

#: subcommand -> one-line help
SUBCOMMANDS = {
    "info": "print a stack's parameters (any supported format), or the devices (--devices)",
    "convert": "convert a stack file or folder to the project's .npz or a multi-page TIFF",
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


#: exit status of a runtime error (usage errors exit 2, as argparse does)
EXIT_RUNTIME_ERROR = 1

log = logging.getLogger("napari_afm_style")
_USER_TQDM_DISABLE = os.environ.get("TQDM_DISABLE")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (not the one at creation), so that
    ``main()`` called repeatedly in one process (tests, notebooks) follows redirections."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help, unless the help already states its default
    or there is none to state (None, False, an empty list)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default in (None, False, argparse.SUPPRESS) or default == []
                or not action.option_strings):
            return text
        if isinstance(default, (list, tuple)):
            shown = " ".join(str(v) for v in default)
        elif isinstance(default, dict):
            shown = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in default.items())
        else:
            shown = str(default)
        return f"{text} (default: {shown})" if text else f"default: {shown}"


def _verbosity_options(parser: argparse.ArgumentParser, default) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity", default=default,
                       help="only warnings and errors; no progress bars")
    group.add_argument("-v", "--verbose", action="store_const", const=1, dest="verbosity", default=default,
                       help="debug messages, and the traceback of a runtime error")


#: subcommands that simulate with ppafm on OpenCL (they take --opencl-platform)
SIMULATING = ("resim", "generate", "demo", "gui", "experiment")


def _opencl_option(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--opencl-platform", type=int, metavar="N", default=default,
                        help="OpenCL platform index for ppafm (default: the first that compiles kernels "
                             "here; `afm-style info --devices` lists them)")


def configure_logging(verbosity: int = 0) -> None:
    """Send the package's messages to stderr: -1 quiet, 0 normal, 1 verbose.

    Quiet also hides tqdm progress bars (``TQDM_DISABLE``), which write to stderr too.
    """
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    if verbosity < 0:
        os.environ["TQDM_DISABLE"] = "1"
    elif _USER_TQDM_DISABLE is None:  # undo an earlier -q in this process, keep the user's own setting
        os.environ.pop("TQDM_DISABLE", None)
    else:
        os.environ["TQDM_DISABLE"] = _USER_TQDM_DISABLE


def command_module(name: str):
    """The module of subcommand ``name`` (``configure`` and ``run``)."""
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afm-style",
        description="Structure discovery and style translation for CO-tip NC-AFM Δf stacks.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    _verbosity_options(parser, default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_,
                           formatter_class=_DefaultsHelpFormatter)
        # after the subcommand too (`afm-style predict -q ...`); SUPPRESS keeps a -q given
        # before the subcommand
        _verbosity_options(p, default=argparse.SUPPRESS)
        if name in SIMULATING:
            _opencl_option(p, default=None)
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
    configure_logging(args.verbosity)
    if getattr(args, "opencl_platform", None) is not None:
        from ..simulate.opencl import OPENCL_PLATFORM_ENV

        if args.opencl_platform < 0:
            parser.error("--opencl-platform must be 0 or more")
        os.environ[OPENCL_PLATFORM_ENV] = str(args.opencl_platform)  # also reaches worker processes
    for output in (getattr(args, "output", None), getattr(args, "csv", None)):
        if output and not Path(output).resolve().parent.is_dir():
            # a typo in -o / --csv must not silently create a tree of folders
            log.error(f"afm-style {args.command}: error: {output}: the folder {Path(output).parent} does not "
                      "exist; create it first")
            return EXIT_RUNTIME_ERROR
    run = command_module(args.command).run
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except (OSError, ValueError, RuntimeError) as e:
        # OSError: missing, unreadable, read-only or existing paths; ValueError: bad content
        # (FileFormatError) or parameters; RuntimeError: a job that could not finish
        message = str(e)
        source = next((getattr(args, name) for name in INPUT_ARGUMENTS if isinstance(getattr(args, name, None), str)),
                      None)
        if source and source not in message and not isinstance(e, OSError):
            message = f"{source}: {message}"  # name the file whose content was refused
        log.error(f"afm-style {args.command}: error: {message}", exc_info=args.verbosity > 0)
        return EXIT_RUNTIME_ERROR


#: the positional argument that names a command's input file, in the order they are tried
INPUT_ARGUMENTS = ("stack", "input", "geometry", "file")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
