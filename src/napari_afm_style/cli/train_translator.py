"""``afm-style train-translator``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.training.train_translator`)."""

from ..training.train_translator import configure_train_translator_parser as configure
from ..training.train_translator import run_train_translator as run

__all__ = ["configure", "run"]
