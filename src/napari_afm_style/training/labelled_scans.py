"""Accuracy on labelled experiment-style scans (the project's acceptance rules).

A labelled scan is a project-style ``.npz`` Δf stack (``df``, ``heights_A`` relative to
the closest slice, ``pixel_size_A``, ``scan_origin_A``, ...) with its water's atoms:
``atoms_Z`` (atomic numbers) and ``atoms_xyz`` (Å; x, y in the scan frame, z in the frame
of ``heights_A``). What a CO tip sees of a 3D water cluster is its top, so the rules
score the top layer laterally:

* only O inside the scan window count;
* O stacked within 1 Å laterally count once (the highest), in predictions and in truth;
* recall is over the top layer: true O within 1.2 Å of the highest true O in the window;
* precision forgives a predicted O that sits on a true O below the top layer;
* matching is one-to-one (Hungarian) and lateral, within 0.5 Å.

These scans serve validation and model selection only; nothing here trains on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..stack import AFMStack

__all__ = ["LabelledScan", "read_labelled_scan", "read_labelled_scans", "dedupe_stacked", "top_layer_f1",
           "bootstrap_mean_ci",
           "score_labelled_scans", "rigid_offset_A", "top_layer", "STACKED_LATERAL_A", "TOP_LAYER_DEPTH_A", "MATCH_LATERAL_A"]

#: O closer than this laterally are one column (the highest kept)
STACKED_LATERAL_A = 1.0
#: true O within this depth of the highest one form the top layer recall is taken over
TOP_LAYER_DEPTH_A = 1.2
#: lateral match tolerance
MATCH_LATERAL_A = 0.5


@dataclass
class LabelledScan:
    """A scan and its true O positions inside the window (Å, scan frame)."""

    path: Path
    stack: AFMStack
    oxygen_A: np.ndarray


def read_labelled_scan(path) -> LabelledScan:
    """Read one labelled scan; raises ``ValueError`` naming the file if a key is missing."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("df", "heights_A", "pixel_size_A", "scan_origin_A", "atoms_Z", "atoms_xyz")
                   if k not in z.files]
        if missing:
            raise ValueError(f"{path}: not a labelled scan (missing {', '.join(missing)})")
        stack = AFMStack(np.asarray(z["df"], np.float32), heights_A=z["heights_A"],
                         pixel_size_A=float(z["pixel_size_A"]), origin_A=tuple(np.asarray(z["scan_origin_A"], float)),
                         f0_Hz=float(z["f0_Hz"]) if "f0_Hz" in z.files else 30300.0,
                         k_N_per_m=float(z["k_N_per_m"]) if "k_N_per_m" in z.files else 1800.0,
                         amplitude_A=float(z["amplitude_A"]) if "amplitude_A" in z.files else 1.0)
        numbers, xyz = np.asarray(z["atoms_Z"]), np.asarray(z["atoms_xyz"], float).reshape(-1, 3)
    x0, y0 = stack.origin_A[:2]
    side_y, side_x = np.array(stack.data.shape[-2:]) * stack.pixel_size_A
    inside = (xyz[:, 0] >= x0) & (xyz[:, 0] < x0 + side_x) & (xyz[:, 1] >= y0) & (xyz[:, 1] < y0 + side_y)
    return LabelledScan(path, stack, xyz[(numbers == 8) & inside])


def read_labelled_scans(folder, limit: int | None = None) -> list[LabelledScan]:
    """Every ``*.npz`` in ``folder`` (sorted) that holds at least one O in its window."""
    files = sorted(Path(folder).glob("*.npz"))[:limit]
    if not files:
        raise FileNotFoundError(f"{folder}: no labelled scans (.npz with atoms_Z and atoms_xyz)")
    scans = [read_labelled_scan(f) for f in files]
    return [s for s in scans if len(s.oxygen_A)]


def dedupe_stacked(xyz, lateral_A: float = STACKED_LATERAL_A) -> np.ndarray:
    """Keep the highest of every group of points closer than ``lateral_A`` laterally.

    >>> dedupe_stacked(np.array([[0, 0, -3.0], [0.5, 0, -5.0], [3, 0, -4.0]])).tolist()
    [[0.0, 0.0, -3.0], [3.0, 0.0, -4.0]]
    """
    xyz = np.asarray(xyz, float).reshape(-1, 3)
    kept: list[np.ndarray] = []
    for p in xyz[np.argsort(-xyz[:, 2], kind="stable")]:
        if all(np.hypot(*(p[:2] - k[:2])) > lateral_A for k in kept):
            kept.append(p)
    return np.array(kept).reshape(-1, 3)


def _n_matched(a: np.ndarray, b: np.ndarray, tol_A: float) -> int:
    from scipy.optimize import linear_sum_assignment

    if len(a) == 0 or len(b) == 0:
        return 0
    d = np.linalg.norm(a[:, None, :2] - b[None, :, :2], axis=2)
    r, c = linear_sum_assignment(d)
    return int((d[r, c] <= tol_A).sum())


def top_layer(true_O_A) -> np.ndarray:
    """The true O within :data:`TOP_LAYER_DEPTH_A` of the highest one (what the tip sees)."""
    true = np.asarray(true_O_A, float).reshape(-1, 3)
    return true[true[:, 2] >= true[:, 2].max() - TOP_LAYER_DEPTH_A] if len(true) else true


def top_layer_f1(predicted_O_A, true_O_A) -> dict:
    """Precision, recall and F1 of predicted O against the true O of one scan (rules above)."""
    pred = dedupe_stacked(predicted_O_A)
    every = dedupe_stacked(true_O_A)
    top = top_layer(true_O_A)
    p = _n_matched(pred, every, MATCH_LATERAL_A) / len(pred) if len(pred) else 0.0
    r = _n_matched(pred, top, MATCH_LATERAL_A) / len(top) if len(top) else 0.0
    f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return {"precision": p, "recall": r, "f1": f1, "n_predicted": len(pred), "n_top": len(top)}


def rigid_offset_A(predicted_O_A, true_O_A, within_A: float = 0.9) -> np.ndarray | None:
    """Mean lateral offset (dx, dy) in Å of predicted O from the true top-layer O of one
    scan: each true O's nearest prediction within ``within_A``; None when there is none.

    A diagnostic of the error budget (what part of a scan's error is one shift of the
    whole image against its atoms), never a correction: it needs the true atoms.

    >>> true = np.array([[0.0, 0.0, -3.0], [3.0, 0.0, -3.0]])
    >>> rigid_offset_A(true + [0.2, -0.4, 0.0], true).round(2).tolist()
    [0.2, -0.4]
    """
    pred = dedupe_stacked(predicted_O_A)
    true = top_layer(dedupe_stacked(true_O_A))
    if len(pred) == 0 or len(true) == 0:
        return None
    d = np.linalg.norm(true[:, None, :2] - pred[None, :, :2], axis=2)
    nearest, near = d.argmin(1), d.min(1) <= within_A
    if not near.any():
        return None
    return (pred[nearest[near], :2] - true[near, :2]).mean(0)


def score_labelled_scans(model, scans, transform=None, bootstrap: int = 2000, seed: int = 0) -> dict:
    """Mean top-layer O F1 of ``model`` over labelled scans, with a bootstrap interval.

    Parameters
    ----------
    model : str, path or LoadedModel
        Anything :func:`~napari_afm_style.predict.predict` takes.
    scans : folder or list of LabelledScan
    transform : callable, optional
        ``transform(stack) -> stack`` before prediction (e.g. a backward translation).
    bootstrap : int
        Resamples over scans for the 95 % interval of the mean.
    """
    from ..predict import load_model, predict

    scans = read_labelled_scans(scans) if isinstance(scans, (str, Path)) else list(scans)
    model = load_model(model)
    per_scan = []
    for s in scans:
        stack = transform(s.stack) if transform is not None else s.stack
        atoms = predict(stack, model=model)
        per_scan.append(top_layer_f1(atoms.positions[atoms.numbers == 8], s.oxygen_A)["f1"])
    f1 = np.array(per_scan)
    return {"mean_f1": float(f1.mean()) if len(f1) else float("nan"),
            "ci95": bootstrap_mean_ci(f1, bootstrap, seed),
            "per_scan": f1.tolist(), "files": [s.path.name for s in scans]}


def bootstrap_mean_ci(values, n_boot: int = 2000, seed: int = 0) -> list:
    """95 % bootstrap interval of the mean of per-scan values (resampling scans); of
    per-scan differences between two models, it is their paired interval.

    >>> bootstrap_mean_ci([0.5, 0.5, 0.5], n_boot=10)
    [0.5, 0.5]
    """
    v = np.asarray(values, float)
    if v.size == 0:
        return [float("nan"), float("nan")]
    idx = np.random.default_rng(seed).integers(0, len(v), (int(n_boot), len(v)))
    return np.percentile(v[idx].mean(axis=1), [2.5, 97.5]).tolist()
