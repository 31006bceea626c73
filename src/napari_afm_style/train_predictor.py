"""Old path of :mod:`napari_afm_style.training.train_predictor` (the same module object, kept for
scripts, notebooks and docs that import it from here)."""

import sys

from .training import train_predictor as _module

sys.modules[__name__] = _module
