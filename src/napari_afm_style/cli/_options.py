"""Options that several subcommands share, defined once so that they read and default alike."""

from __future__ import annotations

import argparse

__all__ = ["add_device_option", "add_progress_option", "add_seed_option"]


def add_device_option(p: argparse.ArgumentParser, what: str = "the network") -> None:
    """``--device auto|cpu|cuda|cuda:N`` (default auto: a GPU when torch sees one)."""
    p.add_argument("--device", default="auto",
                   help=f"where {what} runs: auto (a GPU if torch sees one, else the CPU), cpu, cuda or "
                        "cuda:N; `afm-style info --devices` lists them")


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bar (``-q`` hides them as well)."""
    p.add_argument("--no-progress", action="store_true", help="no progress bar (-q hides it too)")


def add_seed_option(p: argparse.ArgumentParser, default: int = 0, what: str = "random choices") -> None:
    """``--seed``: the one seed that makes a run repeatable."""
    p.add_argument("--seed", type=int, default=default, help=f"random seed for the {what}")
