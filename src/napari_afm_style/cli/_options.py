"""Options that several subcommands share, defined once so that they read and default alike."""

from __future__ import annotations

import argparse

__all__ = ["add_device_option", "add_progress_option", "add_seed_option", "int_at_least", "positive_float",
           "unit_interval", "device_name"]


def int_at_least(low: int):
    """argparse type: an integer ≥ ``low`` (a usage error, exit 2, otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value
    parse.__name__ = f"integer ≥ {low}"
    return parse


def _finite(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be above 0")
    return value


def unit_interval(text: str) -> float:
    """argparse type: a finite number in [0, 1] (a probability, a confidence threshold)."""
    value = _finite(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value:g} is outside 0…1")
    return value


def device_name(text: str) -> str:
    """argparse type: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether that GPU exists is
    checked when the job starts)."""
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text.strip().lower()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use auto, cpu, cuda or cuda:N")
    return text.strip().lower()


def add_device_option(p: argparse.ArgumentParser, what: str = "the network") -> None:
    """``--device auto|cpu|cuda|cuda:N`` (default auto: a GPU when torch sees one)."""
    p.add_argument("--device", default="auto", type=device_name,
                   help=f"where {what} runs: auto (a GPU if torch sees one, else the CPU), cpu, cuda or "
                        "cuda:N; `afm-style info --devices` lists them")


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bar (``-q`` hides them as well)."""
    p.add_argument("--no-progress", action="store_true", help="no progress bar (-q hides it too)")


def add_seed_option(p: argparse.ArgumentParser, default: int = 0, what: str = "random choices") -> None:
    """``--seed``: the one seed that makes a run repeatable."""
    p.add_argument("--seed", type=int, default=default, help=f"random seed for the {what}")
