"""Label-free criteria for choosing style-translation settings on a user's own scans.

Structure models trained on forward-translated simulations are only as good as the
translation; a user has no labels to tell good settings (translator loss weights,
strength) from bad ones. Four criteria need nothing but the user's unlabelled scans:

* :func:`style_distance` — FID (the project's feature network) between simulations
  translated forward with the setting and the scans: does the translation *look* like the
  experiment?
* :func:`order_agreement` — Wasserstein-1 distance between the S_g distribution of the
  structures a model trained with the setting predicts on the scans and the theoretical
  one: are the structures it finds physically plausible?
* :func:`resimulation_agreement` — predict, re-simulate the prediction with ppafm on the
  scan's own grid, and correlate with the scan (NCC of the closest slices): does the
  structure explain the image?
* :func:`prediction_entropy` — mean binary entropy of the O heat maps a model trained with
  the setting gives on the scans: how decided is the model about what it sees? A model whose
  training images resemble the scans is sure of itself there; one that learned the
  translation's inventions hesitates.

``benchmarks/bench_translation_criteria.py`` measures on labelled experiment-style scans
which criterion ranks settings by the structure F1 they lead to (docs/experiment.md).
"""

from __future__ import annotations

import numpy as np

__all__ = ["style_distance", "order_agreement", "resimulation_agreement", "prediction_entropy", "spearman"]


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
    from ..order import order_on_scans
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


def heatmap_entropy(probabilities) -> float:
    """Mean binary entropy (nats per voxel) of a probability map.

    >>> round(heatmap_entropy([0.5, 0.5]), 4)
    0.6931
    >>> heatmap_entropy([0.0, 1.0]) < 1e-5
    True
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    return float(np.mean(-(p * np.log(p) + (1 - p) * np.log1p(-p))))


def prediction_entropy(model, scans, element: str = "O", maps=None) -> dict:
    """How decided ``model`` is on ``scans``: the mean binary entropy of its ``element`` heat
    maps (one view per scan), and the mean confidence of the atoms it reports.

    Lower entropy ranked translators (used alike) by the labelled F1 of their models as well as
    the re-simulation agreement did, at no simulation cost; it does not rank strengths of one
    translator (a model that learned a strong translation's inventions is sure of them too;
    docs/experiment.md). Returns ``{"entropy", "per_scan",
    "mean_confidence", "atoms"}``; ``maps`` (a list of ``PredictionMaps``) skips the network,
    and ``atoms`` (the predictions at the model's threshold) can feed the other criteria.
    """
    from ..predict import load_model, predict_maps

    if maps is None:
        m = load_model(model)
        maps = [predict_maps(s, model=m, test_time_augmentation=1) for s in scans]
    if not maps:
        raise ValueError("prediction_entropy needs at least one scan")
    per_scan, conf, atoms = [], [], []
    for mp in maps:
        per_scan.append(heatmap_entropy(mp.maps[mp.elements.index(element)]))
        a = mp.atoms()
        atoms.append(a)
        c = a.arrays["confidence"][a.symbols == element] if len(a) else np.zeros(0)
        conf.extend(c.tolist())
    return {"entropy": float(np.mean(per_scan)), "per_scan": per_scan,
            "mean_confidence": float(np.mean(conf)) if conf else 0.0, "atoms": atoms}


def spearman(a, b) -> float:
    """Spearman rank correlation of two sequences (average ranks for ties).

    >>> round(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 3)
    1.0
    """
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a, float), np.asarray(b, float)).statistic)
