"""``afm-style experiment``; its arguments and its run live beside the computation
(:mod:`napari_afm_style.training.experiment`)."""

from ..training.experiment import configure_experiment_parser as configure
from ..training.experiment import run_experiment_command as run

__all__ = ["configure", "run"]
