"""Old path of :mod:`napari_afm_style.training.translation_criteria` (the same module object, kept for
scripts, notebooks and docs that import it from here)."""

import sys

from .training import translation_criteria as _module

sys.modules[__name__] = _module
