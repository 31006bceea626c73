"""``afm-style order``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.order`)."""

from ..order import configure_order_parser as configure
from ..order import run_order as run

__all__ = ["configure", "run"]
