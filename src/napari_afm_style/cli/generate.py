"""``afm-style generate``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.training.generate`)."""

from ..training.generate import configure_generate_parser as configure
from ..training.generate import run_generate as run

__all__ = ["configure", "run"]
