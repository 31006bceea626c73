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

from .stack import AFMStack

__all__ = ["perturbed", "accuracy_on_shards", "windowed_match", "site_categories"]


def perturbed(stack: AFMStack, rng: np.random.Generator, strength: float = 1.0) -> AFMStack:
    """``stack`` with random handcrafted perturbations (:func:`~napari_afm_style.perturb.random_perturbation`)."""
    from .dataset import _perturb  # the training regime's own perturbation step

    return stack.replace(data=_perturb(stack.data, rng, strength, stack.pixel_size_A))


def accuracy_on_shards(model, data, perturb: bool = False, strength: float = 1.0, seed: int = 0,
                       max_samples: int | None = None, threshold: float | None = None,
                       device: str = "cpu", lateral_tol_A: float = 0.5, height_tol_A: float = 0.5,
                       progress: bool = False, breakdown: bool = False,
                       eval_z_min_A: float | None = None) -> dict:
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
    breakdown : bool
        Also return ``breakdown``: scores of the first element per structure kind
        (``by_kind``) and its recall per kind of true atom (``recall_by_site``, see
        :func:`site_categories`).

    Returns
    -------
    dict
        ``elements``: ``{symbol: {precision, recall, f1, rmse_A, n_matched, n_pred, n_true}}``;
        ``n_samples``, ``threshold``, ``seconds_per_sample``, ``model`` (name).
    """
    from ase.data import atomic_numbers

    from .dataset import ShardSet, prepare_sample, truth_in_window
    from .predict import LoadedModel, load_model, match_atoms, pool_matches, predict

    loaded = model if isinstance(model, LoadedModel) else load_model(model, device)
    cfg = loaded.config
    shards = data if isinstance(data, ShardSet) else ShardSet(data)
    n = len(shards) if max_samples is None else min(int(max_samples), len(shards))
    if n == 0:
        raise ValueError(f"{data}: no samples to evaluate on")
    rng = np.random.default_rng(seed)
    z_lo = cfg.visible_z_range_A[0] if eval_z_min_A is None else float(eval_z_min_A)
    # truth down to z_lo - height_tol, so that predictions near the window's floor are judged fairly
    truth_cfg = dataclasses.replace(cfg, z_min_A=min(cfg.z_min_A, z_lo - height_tol_A))
    results = {el: [] for el in cfg.elements}
    first = cfg.elements[0]
    by_kind: dict = {}
    sites: dict = {}
    indices = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc=f"evaluate {loaded.name}", unit="stack")
    t0 = time.perf_counter()
    for i in indices:
        sample = shards[i]
        stack = sample.stack()
        if perturb:
            stack = perturbed(stack, rng, strength)
        atoms = predict(stack, model=loaded, threshold=threshold, device=device)
        # truth and prediction in the window frame: Å from pixel [0, 0], z below the closest tip height
        prep = prepare_sample(sample, truth_cfg)
        numbers, truth = truth_in_window(prep.numbers, prep.atoms_px, prep.data.shape[-2:], prep.pixel_size_A)
        pred = atoms.positions - [stack.origin_A[0], stack.origin_A[1], stack.heights_A[-1]]
        symbols = np.array(atoms.get_chemical_symbols())
        for el in cfg.elements:
            all_true = truth[numbers == atomic_numbers[el]]
            m = windowed_match(pred[symbols == el], all_true, z_lo, lateral_tol_A, height_tol_A)
            results[el].append(m)
            true_el = all_true[all_true[:, 2] >= z_lo]
            if breakdown and el == first:
                kind = sample.kind.split(":")[0] or "unknown"
                by_kind.setdefault(kind, []).append(m)
                found = np.zeros(len(true_el), bool)
                found[m["pairs"][:, 1]] = True
                window_A = (prep.data.shape[-1] * prep.pixel_size_A, prep.data.shape[-2] * prep.pixel_size_A)
                for name, mask in site_categories(true_el, window_A).items():
                    tot = sites.setdefault(name, [0, 0])
                    tot[0] += int(found[mask].sum())
                    tot[1] += int(mask.sum())
    dt = time.perf_counter() - t0
    out = {"model": loaded.name, "n_samples": n, "eval_z_min_A": z_lo,
           "threshold": float(threshold if threshold is not None else loaded.default_threshold),
           "seconds_per_sample": dt / n,
           "elements": {el: pool_matches(results[el]) for el in cfg.elements}}
    if breakdown:
        out["breakdown"] = {"element": first,
                            "by_kind": {k: pool_matches(v) | {"n_samples": len(v)} for k, v in sorted(by_kind.items())},
                            "recall_by_site": {k: {"n_found": f, "n_true": t, "recall": f / t if t else float("nan")}
                                               for k, (f, t) in sites.items()}}
    return out


def windowed_match(pred: np.ndarray, true: np.ndarray, z_min_A: float, lateral_tol_A: float = 0.5,
                   height_tol_A: float = 0.5) -> dict:
    """:func:`~napari_afm_style.predict.match_atoms` scores inside the depth window
    ``z >= z_min_A`` (see :func:`accuracy_on_shards`); ``pairs`` index the in-window true atoms."""
    from .predict import _scores, match_atoms

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
    out = _scores(n_tp + n_fp, int(t_in.sum()), n_tp, sq)
    in_index = np.cumsum(t_in) - 1
    out["pairs"] = np.column_stack([hits[:, 0], in_index[hits[:, 1]]]).astype(np.int64)
    return out


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
    if len(p) == 0:
        z = np.zeros(0, bool)
        return {"open": z, "edge": z, "covered": z}
    dxy = np.linalg.norm(p[:, None, :2] - p[None, :, :2], axis=-1)
    dz = p[None, :, 2] - p[:, None, 2]  # dz[i, j] = z_j − z_i
    covered = np.any((dxy <= cover_lateral_A) & (dz >= cover_height_A), axis=1)
    wx, wy = window_A
    edge = ~covered & ((p[:, 0] < edge_A) | (p[:, 1] < edge_A) | (p[:, 0] > wx - edge_A) | (p[:, 1] > wy - edge_A))
    return {"open": ~covered & ~edge, "edge": edge, "covered": covered}
