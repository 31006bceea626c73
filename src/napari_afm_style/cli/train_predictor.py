"""``afm-style train-predictor``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.training.train_predictor`)."""

from ..training.train_predictor import configure_train_predictor_parser as configure
from ..training.train_predictor import run_train_predictor as run

__all__ = ["configure", "run"]
