"""Label-free criteria for choosing style-translation settings on a user's own scans.

Structure models trained on forward-translated simulations are only as good as the
translation; a user has no labels to tell good settings (translator loss weights,
strength) from bad ones. Three criteria need nothing but the user's unlabelled scans:

* :func:`style_distance` — FID (the project's feature network) between simulations
  translated forward with the setting and the scans: does the translation *look* like the
  experiment?
* :func:`order_agreement` — Wasserstein-1 distance between the S_g distribution of the
  structures a model trained with the setting predicts on the scans and the theoretical
  one: are the structures it finds physically plausible?
* :func:`resimulation_agreement` — predict, re-simulate the prediction with ppafm on the
  scan's own grid, and correlate with the scan (NCC of the closest slices): does the
  structure explain the image?

``benchmarks/bench_translation_criteria.py`` measures on labelled experiment-style scans
which criterion ranks settings by the structure F1 they lead to (docs/experiment.md).
"""

from __future__ import annotations

import numpy as np

from ..stack import AFMStack

__all__ = ["style_distance", "order_agreement", "resimulation_agreement", "spearman"]


def style_distance(translator, strength, simulations, scans, seed: int = 0) -> float:
    """FID between forward-translated ``simulations`` and ``scans``.

    Parameters
    ----------
    translator : Translator or path
        Anything :func:`~napari_afm_style.translate.load_translator` takes.
    strength : float or (min, max)
        A fixed strength, or a range drawn from uniformly per stack (seeded), as the
        style regime's training does.
    simulations, scans : list of AFMStack
    """
    from .metrics import fid
    from ..translate import load_translator, prepare_translation

    tr = load_translator(translator)
    lo, hi = (float(strength), float(strength)) if np.isscalar(strength) else map(float, strength)
    rng = np.random.default_rng(seed)
    moved = [prepare_translation(s, "forward", tr).at(float(rng.uniform(lo, hi))) for s in simulations]
    return float(fid(moved, list(scans)))


def order_agreement(model, scans, reference: str = "theory", predictions=None) -> dict:
    """W1 of S_g (and S_k) of ``model``'s predictions on ``scans`` to the reference.

    Returns ``{"W1_S_g", "W1_S_k", "n_centres", "O_per_scan"}``; ``predictions`` (a list of
    ``ase.Atoms``) skips the prediction step.
    """
    from .experiment import order_on_scans
    from ..order import distribution_distances
    from ..predict import load_model, predict

    if predictions is None:
        m = load_model(model)
        predictions = [predict(s, model=m) for s in scans]
    o = order_on_scans(predictions)
    if len(o["S_g"]) < 2:
        return {"W1_S_g": float("nan"), "W1_S_k": float("nan"), "n_centres": int(len(o["S_g"])),
                "O_per_scan": float(o["n_O"].mean())}
    d = distribution_distances(o["S_k"], o["S_g"], reference)
    return {"W1_S_g": float(d["wasserstein_S_g"]), "W1_S_k": float(d["wasserstein_S_k"]),
            "n_centres": int(len(o["S_g"])), "O_per_scan": float(o["n_O"].mean())}


def resimulation_agreement(model, scans, n_closest: int = 3, predictions=None) -> dict:
    """Mean NCC between each scan's ``n_closest`` slices and the ppafm re-simulation of
    ``model``'s prediction on that scan (same grid). Scans without predicted atoms
    count as 0."""
    from ..compare import ncc_per_height
    from ..predict import load_model, predict
    from ..simulate import simulate

    if predictions is None:
        m = load_model(model)
        predictions = [predict(s, model=m) for s in scans]
    per_scan = []
    for stack, atoms in zip(scans, predictions):
        if len(atoms) == 0:
            per_scan.append(0.0)
            continue
        sim = simulate(atoms, like=stack)
        per_scan.append(float(np.mean(ncc_per_height(stack, sim)[-n_closest:])))
    return {"ncc": float(np.mean(per_scan)), "per_scan": per_scan}


def spearman(a, b) -> float:
    """Spearman rank correlation of two sequences (average ranks for ties).

    >>> round(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 3)
    1.0
    """
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a, float), np.asarray(b, float)).statistic)
