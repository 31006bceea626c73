"""Names of the shipped predictor weights, without importing torch, scipy or the networks.

The Predict dock fills its model choice from here when it opens, on the GUI thread; the
network itself is loaded by :func:`napari_afm_style.predict.load_model` (in the dock's
background warm-up). :mod:`napari_afm_style.predict` re-exports these names.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["DEFAULT_MODEL", "MODEL_PREFIX", "list_models", "models_dir"]

MODEL_PREFIX = "predictor_"
#: the structure model used when none is named (API, CLI, GUI, demo): the shipped model with
#: the best top-layer O F1 on labelled experiment-style scans (docs/experiment.md: 0.883,
#: hybrid 0.869, style 0.865, pure 0.767)
DEFAULT_MODEL = "handcrafted"


def models_dir():
    """The package folder that holds the shipped weights."""
    return resources.files("napari_afm_style.models")


def list_models() -> list[str]:
    """Names of the predictor weights shipped in the package (``predictor_<name>.pt``)."""
    names = []
    for entry in models_dir().iterdir():
        n = entry.name
        if n.startswith(MODEL_PREFIX) and n.endswith(".pt"):
            names.append(n[len(MODEL_PREFIX):-3])
    return sorted(names)
