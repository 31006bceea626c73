"""``afm-style calibrate-predictor``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.training.evaluation`)."""

from ..training.evaluation import configure_parser as configure
from ..training.evaluation import run_from_args as run

__all__ = ["configure", "run"]
