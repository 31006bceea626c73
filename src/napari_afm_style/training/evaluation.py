"""Accuracy of a structure-discovery model on labelled (simulated) shards.

Every sample goes through :func:`~napari_afm_style.predict.predict` exactly as a user's
stack does (canonicalisation, network, peak extraction); the predicted atoms are matched
one-to-one (Hungarian) with the true *visible* atoms: those inside the scan window and no
deeper than the model's lowest depth bin. Used by ``benchmarks/bench_predict_accuracy.py``
and the four-regime experiment (:mod:`napari_afm_style.experiment`).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..stack import AFMStack

__all__ = ["perturbed", "accuracy_on_shards", "calibrate_inference", "stacked_under", "windowed_match", "site_categories"]

#: depth bins (Å below a sample's topmost true atom) of the recall-by-depth breakdown; the
#: outer bins take everything beyond them
DEPTH_BINS_A = (-10.0, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0)
#: vertical distances (Å) at which one atom sits right under another in an AA-stacked bilayer
STACKING_DZ_A = (2.0, 3.2)
#: bins (Å) of depth below the closest tip height for ``recall_by_tip_depth``
TIP_DEPTH_BINS_A = (-8.0, -6.0, -5.5, -5.0, -4.5, -4.0, -3.5, -3.0, 0.0)
#: floors (Å below the closest tip height) of ``f1_by_floor`` besides the evaluation's own: the
#: same predictions scored down to each of them that is above it
EVAL_FLOORS_A = (-7.125, -6.625, -6.125, -5.625, -5.125, -4.625)


def perturbed(stack: AFMStack, rng: np.random.Generator, strength: float = 1.0) -> AFMStack:
    """``stack`` with random handcrafted perturbations (:func:`~napari_afm_style.perturb.random_perturbation`)."""
    from ..perturb import perturbed_data  # the training regime's own perturbation step

    return stack.replace(data=perturbed_data(stack.data, rng, strength, stack.pixel_size_A))


def accuracy_on_shards(model, data, perturb: bool = False, strength: float = 1.0, seed: int = 0,
                       max_samples: int | None = None, threshold: float | None = None,
                       device: str = "cpu", lateral_tol_A: float = 0.5, height_tol_A: float = 0.5,
                       progress: bool = False, breakdown: bool = False,
                       eval_z_min_A: float | None = None, test_time_augmentation: int | None = None) -> dict:
    """Precision, recall, F1 and RMSE per element of ``model`` on the shards in ``data``.

    Parameters
    ----------
    model : str, path or LoadedModel
        Anything :func:`~napari_afm_style.predict.load_model` takes.
    data : path or ShardSet
        Labelled shards (``afm-style generate``, or ``afm-style translate`` of them).
    perturb, strength, seed
        Apply random handcrafted perturbations of at most ``strength`` to every stack first
        (seeded; the same draws for every model).
    threshold : float, optional
        Confidence threshold (default: the model's own).
    lateral_tol_A, height_tol_A : float
        Match tolerances (Å).

    eval_z_min_A : float, optional
        Score only atoms at least this high (Å relative to the closest tip height; default:
        the model's deepest depth bin minus half a bin). Scoring is windowed like the
        lateral window: every prediction is matched against every true atom down to
        ``eval_z_min_A − height_tol_A``; true atoms inside the window count as found or
        missed, predictions inside it as right or wrong, and a prediction matched to an atom
        just below the window is neither (it is right, but outside what is scored).
    test_time_augmentation : {1, 2, 4, 8}, optional
        Views averaged by :func:`~napari_afm_style.predict.predict_maps` (default: its default).
    breakdown : bool
        Also return ``breakdown``: scores of the first element per structure kind
        (``by_kind``), its recall per kind of true atom (``recall_by_site``, see
        :func:`site_categories`) and per depth below the sample's topmost true atom
        (``recall_by_depth``, bins of :data:`DEPTH_BINS_A`, keyed ``"lo..hi"`` in Å) and below
        the closest tip height (``recall_by_tip_depth``, :data:`TIP_DEPTH_BINS_A`; also per
        structure kind, ``recall_by_tip_depth_by_kind``: whether an atom that deep is found can
        depend on what lies above it); ``f1_by_floor`` (and per kind, ``f1_by_floor_by_kind``):
        the same predictions scored with the floor at ``eval_z_min_A`` and at each of
        :data:`EVAL_FLOORS_A` above it (how the score depends on how deep atoms are asked for); ``missed``
        counts the missed atoms and those of them with a prediction of the element within the
        lateral tolerance at another height (misplaced in height rather than overlooked);
        ``false`` counts the wrong predictions and those of them right under a true atom
        (within the lateral tolerance, :data:`STACKING_DZ_A` lower: an AA-bilayer partner
        invented where there is none).

    Returns
    -------
    dict
        ``elements``: ``{symbol: {precision, recall, f1, rmse_A, n_matched, n_pred, n_true}}``;
        ``n_samples``, ``threshold``, ``seconds_per_sample``, ``model`` (name).
    """
    from ase.data import atomic_numbers

    from .dataset import ShardSet
    from ..predict import LoadedModel, load_model, pool_matches, predict

    loaded = model if isinstance(model, LoadedModel) else load_model(model, device)
    cfg = loaded.config
    shards = data if isinstance(data, ShardSet) else ShardSet(data)
    n = len(shards) if max_samples is None else min(int(max_samples), len(shards))
    if n == 0:
        raise ValueError(f"{data}: no samples to evaluate on")
    z_lo = cfg.visible_z_range_A[0] if eval_z_min_A is None else float(eval_z_min_A)
    results = {el: [] for el in cfg.elements}
    first = cfg.elements[0]
    tally = _Breakdown(lateral_tol_A) if breakdown else None
    t0 = time.perf_counter()
    for sample, stack, numbers, truth, prep in _labelled_stacks(
            shards, n, cfg, z_lo, height_tol_A, perturb, strength, seed,
            f"evaluate {loaded.name}" if progress else None):
        atoms = predict(stack, model=loaded, threshold=threshold, device=device,
                        test_time_augmentation=test_time_augmentation)
        pred = _in_window_frame(atoms, stack)
        symbols = np.array(atoms.get_chemical_symbols())
        for el in cfg.elements:
            pred_el, true_el = pred[symbols == el], truth[numbers == atomic_numbers[el]]
            m = windowed_match(pred_el, true_el, z_lo, lateral_tol_A, height_tol_A)
            results[el].append(m)
            if tally is not None and el == first:
                window_A = (prep.data.shape[-1] * prep.pixel_size_A, prep.data.shape[-2] * prep.pixel_size_A)
                tally.add(sample.kind, m, true_el[true_el[:, 2] >= z_lo], pred_el, truth[:, 2].max(initial=-np.inf),
                          window_A)
                tally.add_floors(sample.kind, {z_lo: m, **{f: windowed_match(pred_el, true_el, f, lateral_tol_A,
                                                                             height_tol_A)
                                                           for f in EVAL_FLOORS_A if f > z_lo}})
    dt = time.perf_counter() - t0
    out = {"model": loaded.name, "n_samples": n, "eval_z_min_A": z_lo,
           "test_time_augmentation": atoms.info.get("test_time_augmentation_views", 1),
           "threshold": float(atoms.info["threshold"]),
           "seconds_per_sample": dt / n,
           "elements": {el: pool_matches(results[el]) for el in cfg.elements}}
    if tally is not None:
        out["breakdown"] = {"element": first, **tally.result()}
    return out


def _recall(n_found: int, n_true: int) -> dict:
    return {"n_found": int(n_found), "n_true": int(n_true), "recall": n_found / n_true if n_true else float("nan")}


def _recall_by_bin(bins, tally: np.ndarray) -> dict:
    return {f"{lo:g}..{hi:g}": _recall(f, t) for lo, hi, f, t in zip(bins[:-1], bins[1:], *tally) if t}


def _empty_tally(bins) -> np.ndarray:
    """Rows: atoms found, atoms present; one column per bin between consecutive ``bins``."""
    return np.zeros((2, len(bins) - 1), np.int64)


def _kind_group(kind: str) -> str:
    """The structure kind a breakdown groups a sample under (``"theory:12"`` → ``"theory"``)."""
    return kind.split(":")[0] or "unknown"


class _Breakdown:
    """Per-sample tallies of one element's matches for :func:`accuracy_on_shards`'s breakdown."""

    def __init__(self, lateral_tol_A: float):
        self.lateral_tol_A = lateral_tol_A
        self.by_kind: dict = {}
        self.sites: dict = {}
        self.depths = _empty_tally(DEPTH_BINS_A)
        self.tip_depths: dict = {}  # per structure kind: found, true per bin of TIP_DEPTH_BINS_A
        self.n_missed = self.missed_under_pred = 0
        self.n_false = self.false_under_true = 0
        self.floors: dict = {}  # per structure kind: {floor: [windowed matches]}

    def add(self, kind: str, match: dict, true_in: np.ndarray, pred: np.ndarray, top_z_A: float, window_A) -> None:
        """``match``: :func:`windowed_match` of ``pred`` against the in-window true atoms ``true_in``;
        ``top_z_A``: the sample's topmost true atom (any element)."""
        kind = _kind_group(kind)
        self.by_kind.setdefault(kind, []).append(match)
        tip_depths = self.tip_depths.setdefault(kind, _empty_tally(TIP_DEPTH_BINS_A))
        found = np.zeros(len(true_in), bool)
        found[match["pairs"][:, 1]] = True
        for name, mask in site_categories(true_in, window_A).items():
            tot = self.sites.setdefault(name, [0, 0])
            tot[0] += int(found[mask].sum())
            tot[1] += int(mask.sum())
        missed = true_in[~found]
        self.n_missed += len(missed)
        if len(pred) and len(missed):
            # a missed atom under a prediction was misplaced in height, not overlooked
            d = np.linalg.norm(missed[:, None, :2] - pred[None, :, :2], axis=-1)
            self.missed_under_pred += int(np.sum(d.min(axis=1) <= self.lateral_tol_A))
        false = pred[match["false_positive"]]
        self.n_false += len(false)
        self.false_under_true += int(np.sum(stacked_under(false, true_in, self.lateral_tol_A)))
        for tally, z, bins in ((self.depths, true_in[:, 2] - top_z_A, DEPTH_BINS_A),
                               (tip_depths, true_in[:, 2], TIP_DEPTH_BINS_A)):
            b = np.clip(np.digitize(z, bins) - 1, 0, len(bins) - 2)
            np.add.at(tally[0], b, found)
            np.add.at(tally[1], b, 1)

    def add_floors(self, kind: str, matches: dict) -> None:
        """``matches``: ``{floor_A: windowed_match(...) with that floor}`` of one sample."""
        per_kind = self.floors.setdefault(_kind_group(kind), {})
        for floor, m in matches.items():
            per_kind.setdefault(floor, []).append(m)

    def result(self) -> dict:
        from ..predict import pool_matches

        floors = sorted({f for per_kind in self.floors.values() for f in per_kind})
        return {"by_kind": {k: pool_matches(v) | {"n_samples": len(v)} for k, v in sorted(self.by_kind.items())},
                "recall_by_site": {k: _recall(f, t) for k, (f, t) in self.sites.items()},
                "missed": {"n_missed": self.n_missed, "n_with_prediction_above_or_below": self.missed_under_pred},
                "false": {"n_false": self.n_false, "n_under_a_true_atom": self.false_under_true},
                "recall_by_depth": _recall_by_bin(DEPTH_BINS_A, self.depths),
                "recall_by_tip_depth": _recall_by_bin(TIP_DEPTH_BINS_A,
                                                      sum(self.tip_depths.values(), _empty_tally(TIP_DEPTH_BINS_A))),
                "recall_by_tip_depth_by_kind": {k: _recall_by_bin(TIP_DEPTH_BINS_A, v)
                                                for k, v in sorted(self.tip_depths.items())},
                "f1_by_floor": {f"{f:g}": pool_matches([m for per_kind in self.floors.values() for m in per_kind[f]])
                                for f in floors},
                "f1_by_floor_by_kind": {k: {f"{f:g}": pool_matches(v) for f, v in sorted(per_kind.items())}
                                        for k, per_kind in sorted(self.floors.items())}}


def _labelled_stacks(shards, n: int, cfg, z_lo: float, height_tol_A: float, perturb: bool = False,
                     strength: float = 1.0, seed: int = 0, progress_desc: str | None = None):
    """Yield ``(sample, stack, numbers, truth, prepared)`` for the first ``n`` samples.

    ``stack`` is what a user would load (with seeded handcrafted perturbations if
    ``perturb``); ``truth`` are the true atoms in the window frame (Å from pixel [0, 0], z
    below the closest tip height) down to ``z_lo − height_tol_A``, so that predictions near
    the scored window's floor are judged fairly; ``numbers`` their atomic numbers.
    """
    from .dataset import prepare_sample, truth_in_window

    truth_cfg = dataclasses.replace(cfg, z_min_A=min(cfg.z_min_A, z_lo - height_tol_A))
    rng = np.random.default_rng(seed)
    indices = range(n)
    if progress_desc:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=progress_desc, unit="stack")
    for i in indices:
        sample = shards[i]
        stack = sample.stack()
        if perturb:
            stack = perturbed(stack, rng, strength)
        prep = prepare_sample(sample, truth_cfg)
        numbers, truth = truth_in_window(prep.numbers, prep.atoms_px, prep.data.shape[-2:], prep.pixel_size_A)
        yield sample, stack, numbers, truth, prep


def _in_window_frame(atoms, stack: AFMStack) -> np.ndarray:
    return atoms.positions - [stack.origin_A[0], stack.origin_A[1], stack.heights_A[-1]]


def calibrate_inference(model, data, views=(1, 8), thresholds=None, max_samples: int | None = None,
                        eval_z_min_A: float | None = None, device: str = "cpu",
                        lateral_tol_A: float = 0.5, height_tol_A: float = 0.5, progress: bool = False,
                        perturb: bool = False, strength: float = 1.0, seed: int = 0) -> dict:
    """Choose the confidence threshold for each number of averaged views on labelled data.

    Averaging mirrored/rotated views (test-time augmentation) smooths the probability
    maps, so the threshold chosen for the plain network during training no longer is the
    best one. Use a *validation* set drawn like the training data (never the held-out
    benchmark set): every sample is predicted once per view count and scored (O, the first
    element, windowed like :func:`accuracy_on_shards`) at every threshold. With ``perturb``,
    the stacks get seeded handcrafted perturbations first (for a model trained on them).

    Returns
    -------
    dict
        ``views``: ``{n: {"threshold", "f1", "precision", "recall", "f1_by_threshold"}}``;
        ``recommended_views``: the view count with the best F1 (fewer on ties within 0.002);
        ``n_samples``, ``data``, ``eval_z_min_A``.
    """
    from ase.data import atomic_numbers

    from .dataset import ShardSet
    from ..predict import LoadedModel, load_model, pool_matches, predict_maps
    from .train_predictor import THRESHOLDS, best_threshold

    thresholds = tuple(THRESHOLDS if thresholds is None else thresholds)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, device)
    cfg = loaded.config
    first = cfg.elements[0]
    shards = data if isinstance(data, ShardSet) else ShardSet(data)
    n = len(shards) if max_samples is None else min(int(max_samples), len(shards))
    if n == 0:
        raise ValueError(f"{data}: no samples to calibrate on")
    z_lo = cfg.visible_z_range_A[0] if eval_z_min_A is None else float(eval_z_min_A)
    matches = {v: {t: [] for t in thresholds} for v in views}
    for _, stack, numbers, truth, _ in _labelled_stacks(shards, n, cfg, z_lo, height_tol_A, perturb, strength,
                                                        seed, f"calibrate {loaded.name}" if progress else None):
        true_first = truth[numbers == atomic_numbers[first]]
        for v in views:
            maps = predict_maps(stack, loaded, device=device, test_time_augmentation=v)
            for t in thresholds:
                atoms = maps.atoms(t)
                pred = _in_window_frame(atoms, stack)[np.array(atoms.get_chemical_symbols()) == first]
                matches[v][t].append(windowed_match(pred, true_first, z_lo, lateral_tol_A, height_tol_A))
    out = {"views": {}, "n_samples": n, "data": str(data), "eval_z_min_A": z_lo, "element": first,
           "perturbed": bool(perturb)}
    for v in views:
        pooled = {t: pool_matches(matches[v][t]) for t in thresholds}
        best = best_threshold({t: pooled[t]["f1"] for t in thresholds})
        out["views"][int(v)] = {"threshold": float(best), "f1": pooled[best]["f1"],
                                "precision": pooled[best]["precision"], "recall": pooled[best]["recall"],
                                "f1_by_threshold": {str(t): pooled[t]["f1"] for t in thresholds}}
    best_f1 = max(r["f1"] for r in out["views"].values())
    out["recommended_views"] = min(v for v, r in out["views"].items() if r["f1"] >= best_f1 - 0.002)
    return out


def windowed_match(pred: np.ndarray, true: np.ndarray, z_min_A: float, lateral_tol_A: float = 0.5,
                   height_tol_A: float = 0.5) -> dict:
    """:func:`~napari_afm_style.predict.match_atoms` scores inside the depth window
    ``z >= z_min_A`` (see :func:`accuracy_on_shards`); ``pairs`` index the in-window true atoms,
    ``false_positive`` marks the predictions counted as wrong."""
    from ..predict import match_atoms, scores_from_counts

    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    true = np.asarray(true, dtype=np.float64).reshape(-1, 3)
    m = match_atoms(pred, true, lateral_tol_A, height_tol_A, return_pairs=True)
    p_in = pred[:, 2] >= z_min_A
    t_in = true[:, 2] >= z_min_A
    pairs = m["pairs"]
    matched_pred = np.zeros(len(pred), bool)
    matched_pred[pairs[:, 0]] = True
    hits = pairs[t_in[pairs[:, 1]]]
    n_tp = len(hits)
    n_fp = int(np.sum(p_in & ~matched_pred))
    sq = float(np.sum(np.sum((pred[hits[:, 0]] - true[hits[:, 1]]) ** 2, axis=1))) if n_tp else 0.0
    out = scores_from_counts(n_tp + n_fp, int(t_in.sum()), n_tp, sq)
    in_index = np.cumsum(t_in) - 1
    out["pairs"] = np.column_stack([hits[:, 0], in_index[hits[:, 1]]]).astype(np.int64)
    out["false_positive"] = p_in & ~matched_pred
    return out


def stacked_under(points_A: np.ndarray, others_A: np.ndarray, lateral_A: float = 0.5,
                  dz_A: tuple = STACKING_DZ_A) -> np.ndarray:
    """Boolean mask: which ``points_A`` have one of ``others_A`` right on top of them (within
    ``lateral_A`` laterally, ``dz_A`` higher; by default the layer spacing of an AA-stacked
    ice bilayer). Positions in Å, z up.

    Examples
    --------
    >>> stacked_under(np.array([[0, 0, 0.0], [5, 0, 0.0]]), np.array([[0.2, 0, 2.7], [5, 0, 1.0]])).tolist()
    [True, False]
    """
    p = np.asarray(points_A, dtype=np.float64).reshape(-1, 3)
    q = np.asarray(others_A, dtype=np.float64).reshape(-1, 3)
    if len(p) == 0 or len(q) == 0:
        return np.zeros(len(p), bool)
    dxy = np.linalg.norm(p[:, None, :2] - q[None, :, :2], axis=-1)
    dz = q[None, :, 2] - p[:, None, 2]
    return np.any((dxy <= lateral_A) & (dz >= dz_A[0]) & (dz <= dz_A[1]), axis=1)


def site_categories(positions_A: np.ndarray, window_A, edge_A: float = 1.0, cover_lateral_A: float = 1.0,
                    cover_height_A: float = 1.5) -> dict:
    """Boolean masks over true atoms (window frame, Å; z up) by how visible they are.

    ``covered``: another of these atoms lies within ``cover_lateral_A`` laterally and at
    least ``cover_height_A`` higher (e.g. the lower-layer O of an AA-stacked bilayer
    under its upper-layer partner): the tip meets the upper atom first.
    ``edge``: not covered, but within ``edge_A`` of the window border (half its
    contrast is outside the image). ``open``: the rest.
    """
    p = np.asarray(positions_A, dtype=np.float64).reshape(-1, 3)
    covered = stacked_under(p, p, cover_lateral_A, (cover_height_A, np.inf))
    wx, wy = window_A
    edge = ~covered & ((p[:, 0] < edge_A) | (p[:, 1] < edge_A) | (p[:, 0] > wx - edge_A) | (p[:, 1] > wy - edge_A))
    return {"open": ~covered & ~edge, "edge": edge, "covered": covered}
