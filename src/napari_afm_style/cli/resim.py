"""``afm-style resim``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.simulate`)."""

from ..simulate import configure_resim_parser as configure
from ..simulate import run_resim as run

__all__ = ["configure", "run"]
