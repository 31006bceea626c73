"""``afm-style demo``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.demo`)."""

from ..demo import configure_demo_parser as configure
from ..demo import run_demo_command as run

__all__ = ["configure", "run"]
