"""Old path of :mod:`napari_afm_style.training.generate` (the same module object, kept for
scripts, notebooks and docs that import it from here)."""

import sys

from .training import generate as _module

sys.modules[__name__] = _module
