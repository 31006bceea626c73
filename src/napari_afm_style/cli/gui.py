"""``afm-style gui``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.demo`)."""

from ..demo import configure_gui_parser as configure
from ..demo import run_gui as run

__all__ = ["configure", "run"]
