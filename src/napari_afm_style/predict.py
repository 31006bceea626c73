"""Structure discovery: predict atom positions from a Δf stack.

Pipeline
--------
1. :func:`napari_afm_style.resample.to_canonical` brings any stack to the network's grid
   (0.125 Å pixels, 10 heights 0.1 Å apart counted up from the closest slice).
2. The U-Net (:mod:`napari_afm_style.models.predictor`) turns per-slice normalised windows
   into atom-presence probability maps per element and depth bin; images larger than
   ``max_untiled_px`` are cut into overlapping tiles whose centres are stitched.
3. :class:`PredictionMaps` holds the maps with their frame; its :meth:`~PredictionMaps.atoms`
   finds 3D local maxima (per element), refines them to sub-voxel precision and reports
   those above a probability threshold. The expensive part (network, peak search) is done
   once, so re-thresholding (a GUI slider) costs only a filter.

Frame of the result: x, y are Å in the stack's lateral frame (pixel centres,
``origin_A + index * pixel_size_A``); z is the closest tip height of the stack plus the
predicted depth below it. For experimental stacks with relative heights that is the
same relative frame; ``atoms.info["height_frame"]`` says which.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from scipy import ndimage
from scipy.spatial import cKDTree

from ._plain import plain
from .models import weights
from .models.shipped import DEFAULT_MODEL, MODEL_PREFIX, list_models
from .models.shipped import models_dir as _models_dir
from .resample import normalise_slices, tile_slices, to_canonical
from .stack import AFMStack

__all__ = [
    "predict",
    "predict_maps",
    "PredictionMaps",
    "extract_atoms",
    "find_peaks",
    "match_atoms",
    "scores_from_counts",
    "list_models",
    "load_model",
    "save_weights",
    "write_inference_calibration",
    "LoadedModel",
]

WEIGHTS_FORMAT = weights.PREDICTOR_WEIGHTS
CHECKPOINT_FORMAT = weights.PREDICTOR_CHECKPOINT
#: Peaks below this probability are never candidates (they are noise of the sigmoid tail);
#: thresholds below it trigger a fresh peak search.
CANDIDATE_FLOOR = 0.05
#: Sub-voxel refinement may raise a peak above its sampled maximum by at most this factor:
#: a target blob (σ ≈ 2 px laterally, 1 bin in depth) gains ≤ 1.2× at half-voxel offsets.
MAX_REFINE_GAIN = 1.25
#: Views (mirrors/rotations) averaged per window by default; 1 = the plain network.
DEFAULT_TEST_TIME_AUGMENTATION = 1


# -- models ---------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    """A network ready for inference with its configuration and provenance."""

    net: object
    config: object
    name: str
    source: str
    default_threshold: float
    card: dict = field(default_factory=dict)
    #: views averaged by default (calibrated on validation data; 1 = plain network)
    test_time_augmentation: int = 1
    #: calibrated threshold per number of averaged views (``default_threshold`` otherwise)
    thresholds_by_views: dict = field(default_factory=dict)

    @property
    def device(self):
        return next(self.net.parameters()).device

    def threshold_for(self, n_views: int) -> float:
        """The model's default confidence threshold when ``n_views`` views are averaged."""
        return float(self.thresholds_by_views.get(int(n_views), self.default_threshold))


def _resolve_model(model) -> tuple[Path, str]:
    """(file, display name) for a shipped name, a weights/checkpoint file or a checkpoint dir."""
    text = str(model)
    looks_like_path = isinstance(model, os.PathLike) or os.sep in text or text.endswith(".pt") or Path(text).exists()
    if looks_like_path:
        path = Path(text)
        if path.is_dir():
            for cand in ("best.pt", "last.pt"):
                if (path / cand).is_file():
                    return path / cand, f"{path.name}/{cand}"
            raise FileNotFoundError(f"{path} holds no best.pt or last.pt checkpoint")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model weights or checkpoint file")
        return path, path.stem
    entry = _models_dir() / f"{MODEL_PREFIX}{text}.pt"
    if not entry.is_file():
        available = list_models()
        raise ValueError(
            f"no shipped predictor model named {text!r}; available: "
            + (", ".join(repr(a) for a in available) if available else "none yet")
            + ". Give a path to weights or a checkpoint (train one with "
            "`afm-style train-predictor`, ship it with train_predictor.export_model)."
        )
    with resources.as_file(entry) as p:
        return Path(p), text


def _check_threshold(threshold) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}") from None
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {t}")
    return t


def load_model(model=DEFAULT_MODEL, device: str = "cpu") -> LoadedModel:
    """Load (and cache) a predictor: a shipped name, a weights file, a training checkpoint
    or a checkpoint folder (its ``best.pt``, else ``last.pt``)."""
    from ._device import resolve_device

    if isinstance(model, LoadedModel):
        return model
    device = resolve_device(device)  # a GPU torch cannot see is refused here, with the choices
    path, name = _resolve_model(model)
    return weights.CACHE.get_or_build(weights.CACHE.key(path, "predictor", str(device)),
                                      lambda: _load_model_file(path, name, device))


def _load_model_file(path: Path, name: str, device: str) -> LoadedModel:
    from .models.predictor import AtomPredictor, PredictorConfig

    try:
        blob = weights.load(path)
    except Exception as e:  # torch raises assorted errors for foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a predictor weights or checkpoint file of this project "
                         f"({type(e).__name__}: {first[:160]})") from e
    fmt = weights.format_of(blob)
    missing = [k for k in (("state_dict",) if fmt == WEIGHTS_FORMAT else ("model_state",) if fmt == CHECKPOINT_FORMAT
                           else ()) + ("model_config",) if k not in blob]
    if fmt in (WEIGHTS_FORMAT, CHECKPOINT_FORMAT) and missing:
        raise ValueError(f"{path}: predictor file without {', '.join(missing)}; it is damaged or was not "
                         "written by this project")
    if fmt == WEIGHTS_FORMAT:
        state = blob["state_dict"]
        threshold = blob.get("default_threshold")
        card = dict(blob.get("card", {}))
    elif fmt == CHECKPOINT_FORMAT:
        state = blob["model_state"]
        threshold = blob.get("best_threshold")
        card = {"epoch": blob.get("epoch"), "history": blob.get("history", [])}
    else:
        raise ValueError(f"{path}: not a napari-afm-style predictor file (format {fmt!r})")
    config = PredictorConfig.from_dict(blob["model_config"])
    net = AtomPredictor(config)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    net.eval().to(device)
    inference = blob.get("inference") or {}
    return LoadedModel(net, config, name, str(path),
                       float(threshold if threshold is not None else config.default_threshold), card,
                       int(inference.get("test_time_augmentation", DEFAULT_TEST_TIME_AUGMENTATION)),
                       {int(k): float(v) for k, v in inference.get("thresholds_by_views", {}).items()})


def save_weights(net, config, path, default_threshold: float | None = None, card: dict | None = None) -> Path:
    """Write a small inference weights file (fp16 state dict + config), atomically."""
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
             for k, v in (net.state_dict() if hasattr(net, "state_dict") else net).items()}
    blob = {
        "format": WEIGHTS_FORMAT,
        "version": 1,
        "model_config": config.to_dict(),
        "state_dict": state,
        "default_threshold": float(default_threshold if default_threshold is not None
                                   else config.default_threshold),
        "card": plain(card or {}),
    }
    return weights.save(blob, path)


def write_inference_calibration(path, calibration: dict) -> Path:
    """Store a :func:`~napari_afm_style.evaluation.calibrate_inference` result in a weights file.

    The file keeps its network and card; it gains the recommended number of averaged views
    and the threshold for each calibrated view count, which :func:`predict` then uses by
    default. Written atomically (a failure leaves the old file).
    """
    path = Path(path)
    blob = weights.load(path)
    weights.require_format(blob, WEIGHTS_FORMAT, f"{path}: not a predictor weights file (export a checkpoint first)")
    views = {int(v): r for v, r in calibration["views"].items()}
    recommended = int(calibration["recommended_views"])
    _dihedral_views(recommended)
    blob["inference"] = {
        "test_time_augmentation": recommended,
        "thresholds_by_views": {str(v): float(r["threshold"]) for v, r in views.items()},
        "calibration": plain({k: v for k, v in calibration.items() if k != "views"}
                             | {"views": {v: {k: r[k] for k in ("threshold", "f1", "precision", "recall")}
                                          for v, r in views.items()}}),
    }
    return weights.save(blob, path)


# -- peaks ------------------------------------------------------------------------------------

def find_peaks(volume: np.ndarray, spacing_A=(0.25, 0.125, 0.125), min_separation_A=(1.0, 1.0),
               floor: float = CANDIDATE_FLOOR, max_gain: float = MAX_REFINE_GAIN) -> np.ndarray:
    """3D local maxima of a probability volume, refined to sub-voxel precision.

    Parameters
    ----------
    volume : (nz, ny, nx) array
        Probabilities in [0, 1] (one element's depth-binned maps).
    spacing_A : (dz, dy, dx)
        Voxel size in Å.
    min_separation_A : (lateral, vertical)
        A peak closer than this (ellipsoidal distance) to a higher peak is suppressed.
    floor : float
        Peaks below this value are not considered.
    max_gain : float
        Largest factor by which refinement may raise a peak above its voxel value.

    Returns
    -------
    (n, 4) array
        Rows (z, y, x, height), coordinates in voxel units (fractional), sorted by height,
        highest first. Each peak is refined by a parabola through the logarithm of its
        two neighbours per axis (exact for a Gaussian blob); height is the refined peak
        value, at most ``max_gain`` times the voxel value and at most 1.
    """
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3:
        raise ValueError(f"find_peaks needs a (nz, ny, nx) volume, got shape {v.shape}")
    local_max = ndimage.maximum_filter(v, size=3, mode="nearest")
    idx = np.argwhere((v >= local_max) & (v >= floor) & (v > 0))
    if len(idx) == 0:
        return np.zeros((0, 4))
    logv = np.log(np.maximum(v, 1e-12)).astype(np.float64)
    coords = idx.astype(np.float64)
    logh = logv[tuple(idx.T)]
    for axis in range(3):
        n = v.shape[axis]
        lo = idx.copy()
        hi = idx.copy()
        lo[:, axis] -= 1
        hi[:, axis] += 1
        inside = (lo[:, axis] >= 0) & (hi[:, axis] < n)
        lo[~inside, axis] = idx[~inside, axis]
        hi[~inside, axis] = idx[~inside, axis]
        lm, l0, lp = logv[tuple(lo.T)], logv[tuple(idx.T)], logv[tuple(hi.T)]
        denom = lm - 2 * l0 + lp
        ok = inside & (denom < -1e-9)
        off = np.where(ok, 0.5 * (lm - lp) / np.where(ok, denom, -1.0), 0.0)
        off = np.clip(off, -0.5, 0.5)
        coords[:, axis] += off
        logh += np.where(ok, -((lp - lm) ** 2) / (8 * np.where(ok, denom, -1.0)), 0.0)
    # a spiky (non-Gaussian) maximum would extrapolate to a spurious height: bound the gain
    heights = np.minimum(np.exp(np.minimum(logh, logv[tuple(idx.T)] + np.log(max_gain))), 1.0)
    order = np.argsort(-heights, kind="stable")
    coords, heights = coords[order], heights[order]
    # greedy non-maximum suppression in Å: a peak survives if no higher surviving peak
    # lies within the separation ellipsoid. Because it only looks at higher peaks, the
    # survivors above any threshold equal the survivors of a search at that threshold.
    lat, vert = (float(s) for s in min_separation_A)
    scaled = coords * np.array([spacing_A[0] / vert, spacing_A[1] / lat, spacing_A[2] / lat])
    keep = np.ones(len(coords), bool)
    if len(coords) > 1:
        pairs = cKDTree(scaled).query_pairs(1.0 - 1e-9, output_type="ndarray")
        if len(pairs):
            pairs = np.sort(pairs, axis=1)  # (higher, lower) since sorted by height
            pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
            heads, starts = np.unique(pairs[:, 0], return_index=True)
            stops = np.append(starts[1:], len(pairs))
            for i, a, b in zip(heads.tolist(), starts.tolist(), stops.tolist()):
                if keep[i]:  # only peaks with neighbours need a look, highest first
                    keep[pairs[a:b, 1]] = False
    return np.column_stack([coords[keep], heights[keep]])


@dataclass
class PredictionMaps:
    """Network output with its frame: per-element, depth-binned probability maps.

    Attributes
    ----------
    maps : (n_elements, n_zbins, ny, nx) float32
        Probability that an atom of the element sits in each voxel.
    elements : tuple of str
    z_centres_A : (n_zbins,) array
        Depth-bin centres in Å relative to ``reference_z_A`` (negative: below the tip).
    pixel_size_A : float
    origin_A : (2,) array
        (x, y) of pixel [0, 0]'s centre, in the stack's frame.
    reference_z_A : float
        The closest tip height of the stack (its frame).
    min_separation_A : tuple of (lateral, vertical) per element
    default_threshold : float
    info : dict
        JSON-able record of the model and the preprocessing.
    """

    maps: np.ndarray
    elements: tuple
    z_centres_A: np.ndarray
    pixel_size_A: float
    origin_A: np.ndarray
    reference_z_A: float
    min_separation_A: tuple
    default_threshold: float = 0.5
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self._peaks: dict = {}

    @property
    def z_step_A(self) -> float:
        z = np.asarray(self.z_centres_A)
        return float(z[1] - z[0]) if len(z) > 1 else 1.0

    def peaks(self, element: str, floor: float = CANDIDATE_FLOOR) -> np.ndarray:
        """(n, 4) rows x, y, z (Å, stack frame) and confidence, highest first (cached)."""
        key = (element, float(floor))
        if key not in self._peaks:
            e = self.elements.index(element)
            raw = find_peaks(self.maps[e], (self.z_step_A, self.pixel_size_A, self.pixel_size_A),
                             self.min_separation_A[e], floor)
            z = self.reference_z_A + self.z_centres_A[0] + raw[:, 0] * self.z_step_A
            y = self.origin_A[1] + raw[:, 1] * self.pixel_size_A
            x = self.origin_A[0] + raw[:, 2] * self.pixel_size_A
            self._peaks[key] = np.column_stack([x, y, z, raw[:, 3]])
        return self._peaks[key]

    def atoms(self, threshold: float | None = None) -> Atoms:
        """Atoms whose peak probability is ≥ ``threshold`` (default: the model's).

        Cheap after the first call: peaks are found once and filtered here.
        """
        t = self.default_threshold if threshold is None else _check_threshold(threshold)
        floor = CANDIDATE_FLOOR if t >= CANDIDATE_FLOOR else max(t, 1e-6)
        numbers, rows = [], []
        for el in self.elements:
            pk = self.peaks(el, floor)
            pk = pk[pk[:, 3] >= t]
            rows.append(pk)
            numbers += [atomic_numbers[el]] * len(pk)
        rows = np.concatenate(rows) if rows else np.zeros((0, 4))
        atoms = Atoms(numbers=numbers, positions=rows[:, :3] if len(rows) else np.zeros((0, 3)))
        atoms.arrays["confidence"] = rows[:, 3].astype(np.float64) if len(rows) else np.zeros(0)
        info = copy.deepcopy(self.info)
        info["threshold"] = t
        atoms.info.update(info)
        return atoms

    def projection(self, element: str) -> np.ndarray:
        """(ny, nx) maximum probability over depth for ``element`` (for display)."""
        return self.maps[self.elements.index(element)].max(axis=0)


def extract_atoms(maps: PredictionMaps, threshold: float | None = None) -> Atoms:
    """Atoms above ``threshold`` from precomputed maps (cheap; no network call)."""
    return maps.atoms(threshold)


# -- inference ------------------------------------------------------------------------------

def _tile_bounds(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(start, stop, keep_start, keep_stop) per tile: neighbours split their overlap in
    the middle, so every pixel comes from the tile where it is farthest from an edge."""
    tiles = tile_slices(length, tile, overlap)
    out = []
    for i, (a, b) in enumerate(tiles):
        ka = 0 if i == 0 else (tiles[i - 1][1] + a) // 2
        kb = length if i == len(tiles) - 1 else (b + tiles[i + 1][0]) // 2
        out.append((a, b, ka, kb))
    return out


def _as_stack(stack) -> AFMStack:
    if isinstance(stack, AFMStack):
        return stack
    if isinstance(stack, (str, os.PathLike)):
        from .io import read_stack

        return read_stack(stack)
    raise TypeError(f"expected an AFMStack or a path to a stack file, got {type(stack).__name__}")


def _dihedral_views(n_views: int) -> list[tuple[int, bool]]:
    """The first ``n_views`` of the 8 symmetries of the square as (quarter turns, mirror)."""
    if n_views not in (1, 2, 4, 8):
        raise ValueError(f"test_time_augmentation must be 1, 2, 4 or 8 views, got {n_views!r}")
    # ordered so that 2 = identity + mirror, 4 = the shape-keeping group (mirrors, half turn)
    order = [(0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True)]
    return order[:n_views]


def _from_view(y, quarter_turns: int, mirror: bool):
    """Undo :func:`~napari_afm_style.resample.dihedral` (mirror, then quarter turns) on maps."""
    y = np.rot90(y, -quarter_turns, axes=(-2, -1))
    return y[..., ::-1] if mirror else y


def _network_probabilities(net, window: np.ndarray, device, n_views: int) -> np.ndarray:
    """Sigmoid maps of ``net`` on ``window`` (C, H, W), averaged over ``n_views`` symmetric views.

    The lateral physics of a CO tip over a surface has no preferred direction, so mirrored
    or rotated inputs must give mirrored or rotated maps; averaging the views undone removes
    the network's own orientation bias (test-time augmentation). Views of equal shape run as
    one batch.
    """
    import torch

    from .resample import dihedral

    views = _dihedral_views(n_views)
    total = None
    for same_shape in ([v for v in views if v[0] % 2 == 0], [v for v in views if v[0] % 2 == 1]):
        if not same_shape:
            continue
        batch = np.stack([dihedral(window, (), *v)[0] for v in same_shape])
        prob = torch.sigmoid(net(torch.from_numpy(batch).to(device))).float().cpu().numpy()
        for v, p in zip(same_shape, prob):
            p = _from_view(p, *v)
            total = p.copy() if total is None else total + p
    return total / len(views)


def predict_maps(stack, model=DEFAULT_MODEL, device: str = "cpu", tile_px: int = 128, overlap_px: int = 32,
                 max_untiled_px: int = 192, test_time_augmentation: int | None = None,
                 progress: bool = False) -> PredictionMaps:
    """Run the network on ``stack`` and return its probability maps with their frame.

    Parameters
    ----------
    stack : AFMStack or path
        Any Δf stack (resampled to the model's grid; NaN is refused).
    model : str, path or LoadedModel
        Shipped model name (see :func:`list_models`), weights/checkpoint file or folder.
    device : str
        Torch device for the network.
    tile_px, overlap_px, max_untiled_px : int
        Images wider than ``max_untiled_px`` (after resampling) are processed in tiles of
        ``tile_px`` overlapping by ``overlap_px``; each tile is normalised on its own, as
        the training windows were.
    test_time_augmentation : {1, 2, 4, 8}, optional
        Number of mirrored/rotated views of each window whose maps are averaged (1: the
        plain network). Default: the model's calibrated choice
        (:func:`write_inference_calibration`), else :data:`DEFAULT_TEST_TIME_AUGMENTATION`.
        The default threshold follows the view count (each is calibrated separately).
    progress : bool
        Show a progress bar over the windows on stderr (the command line does).
    """
    import torch

    stack = _as_stack(stack)
    loaded = load_model(model, device)
    cfg = loaded.config
    canon, record = to_canonical(stack, cfg.grid)
    data = canon.data
    ny, nx = data.shape[-2:]
    if max(ny, nx) > max_untiled_px:
        ty, tx = _tile_bounds(ny, tile_px, overlap_px), _tile_bounds(nx, tile_px, overlap_px)
    else:
        ty, tx = [(0, ny, 0, ny)], [(0, nx, 0, nx)]
    maps = np.empty((cfg.n_elements, cfg.n_zbins, ny, nx), dtype=np.float32)
    net = loaded.net
    dev = loaded.device
    n_views = loaded.test_time_augmentation if test_time_augmentation is None else int(test_time_augmentation)
    _dihedral_views(n_views)  # validate before any work
    bar = None
    if progress:
        import sys

        from tqdm.auto import tqdm

        bar = tqdm(total=len(ty) * len(tx), desc=f"predicting ({n_views} view(s) per window)", unit="window",
                   file=sys.stderr)
    try:
        with torch.inference_mode():
            for (y0, y1, ky0, ky1) in ty:
                for (x0, x1, kx0, kx1) in tx:
                    window = normalise_slices(data[:, y0:y1, x0:x1])
                    prob = _network_probabilities(net, window, dev, n_views)
                    maps[..., ky0:ky1, kx0:kx1] = prob[..., ky0 - y0:ky1 - y0, kx0 - x0:kx1 - x0]
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    info = {
        "predictor_model": loaded.name,
        "predictor_model_source": loaded.source,
        "elements": list(cfg.elements),
        "frame": "x, y: stack lateral frame (Å, pixel centres); z: closest tip height + predicted depth (Å)",
        "height_frame": stack.height_frame,
        "reference_z_A": float(canon.heights_A[-1]),
        "depth_range_A": [float(v) for v in cfg.visible_z_range_A],
        "pixel_size_A": float(canon.pixel_size_A),
        "canonical_shape": list(data.shape),
        "n_tiles": len(ty) * len(tx),
        "test_time_augmentation_views": n_views,
        "preprocessing": record,
    }
    if len(ty) * len(tx) > 1:
        info["tiles_y"] = [list(t[:2]) for t in ty]
        info["tiles_x"] = [list(t[:2]) for t in tx]
    json.dumps(info)  # guarantee: JSON-able
    return PredictionMaps(maps, tuple(cfg.elements), cfg.z_centres_A.copy(), float(canon.pixel_size_A),
                          canon.origin_A.copy(), float(canon.heights_A[-1]), cfg.min_separation_A,
                          loaded.threshold_for(n_views), info)


def predict(stack, model=DEFAULT_MODEL, threshold: float | None = None, device: str = "cpu",
            test_time_augmentation: int | None = None) -> Atoms:
    """Predict the atoms (O, H, …) seen in a Δf stack.

    Parameters
    ----------
    stack : AFMStack or path
        Any stack; it is resampled to the model's grid (what was done is recorded in
        ``atoms.info["preprocessing"]``). NaN/inf pixels raise ValueError.
    model : str or path
        A shipped model name (``list_models()``: "pure", "handcrafted", …), or the path of
        a weights file, a training checkpoint or a checkpoint folder.
    threshold : float, optional
        Minimum peak probability of a reported atom; default: the model's (chosen on
        validation data during training).
    device : str
        Torch device.
    test_time_augmentation : {1, 2, 4, 8}, optional
        Mirrored/rotated views averaged (see :func:`predict_maps`).

    Returns
    -------
    ase.Atoms
        Positions in the stack's frame (see the module docstring), per-atom
        ``atoms.arrays["confidence"]`` (peak probability), and ``atoms.info`` with the
        model, threshold, frame and preprocessing (JSON-able).
    """
    if threshold is not None:
        _check_threshold(threshold)  # fail before the network runs
    return predict_maps(stack, model, device, test_time_augmentation=test_time_augmentation).atoms(threshold)


# -- metrics --------------------------------------------------------------------------------

def _positions_of(atoms, element):
    if isinstance(atoms, Atoms):
        pos = atoms.positions
        if element is not None:
            pos = pos[np.array(atoms.get_chemical_symbols()) == element]
        return np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    return np.asarray(atoms, dtype=np.float64).reshape(-1, 3)


def match_atoms(pred, true, lateral_tol_A: float = 0.5, height_tol_A: float = 0.5,
                element: str | None = None, return_pairs: bool = False) -> dict:
    """One-to-one matching of predicted and true atoms (Hungarian) and its scores.

    Two atoms can match if they are within ``lateral_tol_A`` laterally AND
    ``height_tol_A`` vertically; among matchings with the most pairs, the total 3D
    distance is minimal.

    Parameters
    ----------
    pred, true : ase.Atoms or (n, 3) array_like
        Positions in Å in the same frame.
    element : str, optional
        Use only atoms of this element (when ``pred``/``true`` are Atoms).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``rmse_A`` (3D, over matched pairs; NaN if none),
        and the counts ``n_pred``, ``n_true``, ``n_matched``, ``sq_err_A2`` (sum of squared
        errors, for pooling over many images). With no predictions precision is 1, with no
        true atoms recall is 1. With ``return_pairs``, also ``pairs``: an (n_matched, 2)
        array of (predicted index, true index).
    """
    from scipy.optimize import linear_sum_assignment  # scipy.optimize is slow to import; only scoring needs it

    p = _positions_of(pred, element)
    t = _positions_of(true, element)
    n_matched, sq = 0, 0.0
    pairs = np.zeros((0, 2), dtype=np.int64)
    if len(p) and len(t):
        dxy = np.linalg.norm(p[:, None, :2] - t[None, :, :2], axis=-1)
        dz = np.abs(p[:, None, 2] - t[None, :, 2])
        feasible = (dxy <= lateral_tol_A) & (dz <= height_tol_A)
        if feasible.any():
            d = np.sqrt(dxy**2 + dz**2)
            # an infeasible pair costs more than any set of feasible ones, so the optimum
            # first maximises the number of feasible pairs
            big = (d[feasible].max() + 1.0) * (min(len(p), len(t)) + 1)
            cost = np.where(feasible, d, big)
            r, c = linear_sum_assignment(cost)
            ok = feasible[r, c]
            n_matched = int(ok.sum())
            sq = float(np.sum(d[r[ok], c[ok]] ** 2))
            pairs = np.column_stack([r[ok], c[ok]]).astype(np.int64)
    out = scores_from_counts(len(p), len(t), n_matched, sq)
    if return_pairs:
        out["pairs"] = pairs
    return out


def scores_from_counts(n_pred: int, n_true: int, n_matched: int, sq_err: float) -> dict:
    """Precision, recall, F1 and RMSE (the :func:`match_atoms` dict) from match counts."""
    precision = n_matched / n_pred if n_pred else 1.0
    recall = n_matched / n_true if n_true else 1.0
    f1 = 2 * n_matched / (n_pred + n_true) if (n_pred + n_true) else 1.0
    rmse = float(np.sqrt(sq_err / n_matched)) if n_matched else float("nan")
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "rmse_A": rmse,
            "n_pred": int(n_pred), "n_true": int(n_true), "n_matched": int(n_matched),
            "sq_err_A2": float(sq_err)}


def pool_matches(results: list[dict]) -> dict:
    """Scores over many images from per-image :func:`match_atoms` results (micro-average)."""
    return scores_from_counts(sum(r["n_pred"] for r in results), sum(r["n_true"] for r in results),
                   sum(r["n_matched"] for r in results), sum(r["sq_err_A2"] for r in results))
