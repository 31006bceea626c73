"""Names of the shipped predictor weights, without importing torch, scipy or the networks.

The Predict dock fills its model choice from here when it opens, on the GUI thread; the
network itself is loaded by :func:`napari_afm_style.predict.load_model` (in the dock's
background warm-up). :mod:`napari_afm_style.predict` re-exports these names.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["DEFAULT_MODEL", "MODEL_PREFIX", "BEST_BACKWARD_STRENGTH", "input_advice", "list_models", "models_dir"]

MODEL_PREFIX = "predictor_"
#: the structure model used when none is named (API, CLI, GUI, demo): the path that scores best
#: on the labelled experiment-style scans (top-layer O F1, docs/experiment.md): `hybrid` on the
#: raw scan 0.892; handcrafted 0.883 raw, 0.891 after backward translation; style 0.868; pure
#: 0.767. It reads raw scans best (0.876 after backward translation at strength 1).
DEFAULT_MODEL = "hybrid"

#: the backward-translation strength (0 = the raw scan) at which each shipped model reads
#: experiment-style scans best: top-layer O F1 on the labelled scans at 0 / 0.5 / 1
#: (docs/experiment.md): hybrid 0.892 / 0.886 / 0.876, handcrafted 0.883 / 0.883 / 0.891,
#: style 0.868 / 0.859 / 0.853, pure 0.767 / 0.783 / 0.786
BEST_BACKWARD_STRENGTH = {"hybrid": 0.0, "handcrafted": 1.0, "style": 0.0, "pure": 1.0}


def input_advice(model: str, strength: float | None) -> str:
    """One line for the Predict dock: which input ``model`` reads best, and what to choose
    when the chosen stack is not it (``strength``: its backward translation, None = raw).

    >>> input_advice("hybrid", 1.0)
    'hybrid reads raw scans best: choose the raw scan'
    >>> input_advice("hybrid", None)
    'hybrid reads raw scans best'
    """
    best = BEST_BACKWARD_STRENGTH.get(str(model))
    if best is None:
        return ""
    what = "raw scans" if best == 0 else f"scans translated backward at strength {best:g}"
    have = 0.0 if strength is None else float(strength)
    if abs(have - best) < 1e-6:
        return f"{model} reads {what} best"
    todo = "choose the raw scan" if best == 0 else f"translate the scan backward at strength {best:g} first"
    return f"{model} reads {what} best: {todo}"


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
