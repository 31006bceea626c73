"""Style-gap metrics between two sets of Δf stacks (e.g. simulated vs experimental).

* :func:`fid` — Fréchet distance between Gaussian fits of learned features (the
  project's own self-supervised feature network, :mod:`napari_afm_style.models.feature_net`,
  trained on both domains so it is not biased toward either).
* :func:`mmd` — squared maximum mean discrepancy, unbiased estimator, Gaussian kernel
  with the median-heuristic bandwidth, by default on a weight-free *style descriptor*
  (per-height band powers, inter-height correlation, scan-line anisotropy).
* :func:`spectrum_distance` — RMS difference (in decades) of the radially averaged,
  log power spectra of the two sets, slice by slice.

Sets are lists of :class:`~napari_afm_style.stack.AFMStack` (adapted with
:func:`~napari_afm_style.resample.to_canonical`, so pixel sizes and heights match the
networks' grid) or arrays already on the canonical grid: an ``(N, n_heights, ny, nx)``
array or a list of ``(n_heights, ny, nx)`` arrays. Every slice is normalised to zero mean
and unit variance first: the metrics compare style, not Hz scale. All are deterministic.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import linalg

from .._mmd import gaussian_mmd2, median_bandwidth
from ..resample import DEFAULT_GRID, CanonicalGrid, normalise_slices, to_canonical
from ..stack import AFMStack

__all__ = [
    "fid",
    "mmd",
    "spectrum_distance",
    "canonical_arrays",
    "radial_power_spectrum",
    "mean_log_spectrum",
    "style_descriptor",
    "frechet_distance",
    "feature_matrix",
]

#: Band edges (cycles/Å) of the style descriptor: fine at low k, where the molecular
#: contrast lives (features of 1–4 Å), coarse at high k, where mostly noise lives.
DESCRIPTOR_BANDS_PER_A = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, np.inf)

FeatureSpec = str | Callable[[list[np.ndarray]], np.ndarray] | None


# -- inputs ------------------------------------------------------------------------------

def canonical_arrays(items, grid: CanonicalGrid = DEFAULT_GRID) -> list[np.ndarray]:
    """Per-slice normalised float32 arrays ``(n_heights, ny, nx)`` from a set of stacks.

    AFMStacks go through :func:`to_canonical`; arrays are taken to be on the canonical
    grid already (pixel size ``grid.pixel_size_A``, heights ``grid.height_step_A`` apart).
    """
    if isinstance(items, AFMStack):
        items = [items]
    elif isinstance(items, np.ndarray):
        if items.ndim != 4:
            raise ValueError(
                f"an array set must have shape (N, n_heights, ny, nx); got {items.shape}. "
                "Pass a list of stacks for a set of one or of different sizes."
            )
    out = []
    for i, item in enumerate(items):
        if isinstance(item, AFMStack):
            arr = to_canonical(item, grid)[0].data
        else:
            arr = np.asarray(item, dtype=np.float32)
            if arr.ndim == 2:
                arr = arr[None]
            if arr.ndim != 3:
                raise ValueError(f"item {i} of the set has shape {arr.shape}; expected (n_heights, ny, nx)")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"item {i} of the set contains NaN/inf; fill or crop it first")
        out.append(normalise_slices(arr))
    if not out:
        raise ValueError("the set is empty; give at least one stack")
    return out


def _check_heights(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    n = {x.shape[0] for x in a} | {x.shape[0] for x in b}
    if len(n) != 1:
        raise ValueError(
            f"the stacks have different numbers of heights {sorted(n)}; give AFMStacks "
            "(adapted to the canonical grid) or arrays with the same number of slices"
        )
    return n.pop()


# -- spectra -----------------------------------------------------------------------------

def radial_power_spectrum(images: np.ndarray, pixel_size_A: float = DEFAULT_GRID.pixel_size_A,
                          bin_edges_per_A: Sequence[float] | None = None,
                          n_bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of each image in ``images`` (..., ny, nx).

    A Hann window suppresses the cross that the non-periodic image edges would add.
    Power is normalised by the window energy, so a unit-variance white-noise image has
    a flat spectrum of ≈ 1. The DC term is excluded.

    Parameters
    ----------
    images : ndarray (..., ny, nx)
    pixel_size_A : float
        Pixel size; bins are in physical spatial frequency (cycles/Å), so images of
        different sizes are comparable.
    bin_edges_per_A : sequence of float, optional
        Bin edges in cycles/Å (the last may be ``inf``). Default: ``n_bins`` equal bins
        from 0 to the Nyquist frequency ``1 / (2 pixel_size_A)``.
    n_bins : int

    Returns
    -------
    k_per_A : ndarray (n_bins,)
        Bin centres (cycles/Å; the centre of an open last bin is its lower edge).
    power : ndarray (..., n_bins)
        Mean power in each bin; bins without any frequency sample are interpolated
        from their neighbours.
    """
    images = np.asarray(images, dtype=np.float64)
    ny, nx = images.shape[-2:]
    nyquist = 0.5 / pixel_size_A
    edges = (np.linspace(0.0, nyquist, n_bins + 1) if bin_edges_per_A is None
             else np.asarray(bin_edges_per_A, dtype=np.float64))
    edges = edges.copy()
    edges[-1] = max(edges[-1], nyquist * np.sqrt(2) + 1e-9)  # keep the corners in the last bin
    win = np.outer(np.hanning(ny), np.hanning(nx)) if min(ny, nx) > 2 else np.ones((ny, nx))
    centred = images - images.mean(axis=(-2, -1), keepdims=True)
    spec = np.abs(np.fft.fft2(centred * win)) ** 2 / max(np.sum(win ** 2), 1e-12)
    ky = np.fft.fftfreq(ny, d=pixel_size_A)
    kx = np.fft.fftfreq(nx, d=pixel_size_A)
    kk = np.hypot(ky[:, None], kx[None, :]).ravel()
    nb = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, kk, side="right") - 1, 0, nb - 1)
    valid = kk > 0
    idx, flat = idx[valid], spec.reshape(*spec.shape[:-2], -1)[..., valid]
    counts = np.bincount(idx, minlength=nb).astype(np.float64)
    lead = flat.shape[:-1]
    flat2 = flat.reshape(-1, flat.shape[-1])
    sums = np.stack([np.bincount(idx, weights=row, minlength=nb) for row in flat2])
    power = np.full_like(sums, np.nan)
    has = counts > 0
    power[:, has] = sums[:, has] / counts[has]
    if not has.all():
        centres_has = np.flatnonzero(has)
        for r in range(power.shape[0]):
            power[r] = np.interp(np.arange(nb), centres_has, power[r, has])
    upper = np.minimum(np.asarray(bin_edges_per_A if bin_edges_per_A is not None else edges,
                                  dtype=np.float64)[1:], nyquist)
    centres = 0.5 * (edges[:-1] + np.maximum(upper, edges[:-1]))
    return centres, power.reshape(*lead, nb)


def _mean_log_spectrum(arrays: list[np.ndarray], n_bins: int, pixel_size_A: float) -> np.ndarray:
    logs = [np.log10(radial_power_spectrum(a, pixel_size_A, n_bins=n_bins)[1] + 1e-12)
            for a in arrays]
    return np.mean(logs, axis=0)


def mean_log_spectrum(items, n_bins: int = 32, grid: CanonicalGrid = DEFAULT_GRID) -> np.ndarray:
    """Set average of ``log10`` radial power spectra, per height: ``(n_heights, n_bins)``."""
    arrays = canonical_arrays(items, grid)
    _check_heights(arrays, arrays)
    return _mean_log_spectrum(arrays, n_bins, grid.pixel_size_A)


def spectrum_distance(a, b, n_bins: int = 32, grid: CanonicalGrid = DEFAULT_GRID) -> float:
    """RMS difference (decades) of the sets' mean log10 radial power spectra.

    Slices are normalised per slice and compared height by height; 0 for identical
    sets; noise, blur, stripes or a different contrast scale per height raise it.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 2, 32, 32))
    >>> spectrum_distance(x, x)
    0.0
    """
    ca, cb = canonical_arrays(a, grid), canonical_arrays(b, grid)
    _check_heights(ca, cb)
    sa = _mean_log_spectrum(ca, n_bins, grid.pixel_size_A)
    sb = _mean_log_spectrum(cb, n_bins, grid.pixel_size_A)
    return float(np.sqrt(np.mean((sa - sb) ** 2)))


# -- style descriptor --------------------------------------------------------------------

def style_descriptor(arrays: list[np.ndarray], pixel_size_A: float = DEFAULT_GRID.pixel_size_A) -> np.ndarray:
    """Weight-free style features of normalised canonical stacks, one row per stack.

    Per stack: log10 band power of every slice in the bands
    :data:`DESCRIPTOR_BANDS_PER_A` (height-dependent noise, blur, resolution); the
    Fisher-z correlation of each pair of adjacent slices (noise and lateral
    misregistration between heights lower it); and per slice ``log`` of the ratio of
    mean squared differences across scan lines (y) to along them (x), which scan-line
    jumps and streaks raise.
    """
    rows = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        _, bands = radial_power_spectrum(a, pixel_size_A, DESCRIPTOR_BANDS_PER_A)
        feats = [np.log10(bands + 1e-12).ravel()]
        if a.shape[0] > 1:
            corr = np.mean(a[1:] * a[:-1], axis=(-2, -1))  # slices are zero-mean, unit-variance
            feats.append(np.arctanh(np.clip(corr, -0.999, 0.999)))
        dy = np.mean(np.diff(a, axis=-2) ** 2, axis=(-2, -1))
        dx = np.mean(np.diff(a, axis=-1) ** 2, axis=(-2, -1))
        feats.append(np.log((dy + 1e-9) / (dx + 1e-9)))
        rows.append(np.concatenate(feats))
    return np.asarray(rows)


# -- features ------------------------------------------------------------------------------

def feature_matrix(items, features: FeatureSpec = "descriptor", model=None,
                   grid: CanonicalGrid = DEFAULT_GRID) -> np.ndarray:
    """Feature rows of a set: ``"descriptor"`` (:func:`style_descriptor`), ``"net"`` (the
    feature network; ``model`` = a path or a loaded net, None = the shipped one), or a
    callable taking the list of normalised canonical arrays and returning ``(N, D)``."""
    arrays = canonical_arrays(items, grid)
    if callable(features):
        out = np.asarray(features(arrays), dtype=np.float64)
    elif features == "descriptor":
        out = style_descriptor(arrays, grid.pixel_size_A)
    elif features in ("net", None):
        from ..models.feature_net import FeatureNet, load_feature_net

        net = model if isinstance(model, FeatureNet) else load_feature_net(model)
        out = net.features(arrays).astype(np.float64)
    else:
        raise ValueError(f"features must be 'descriptor', 'net' or a callable, got {features!r}")
    if out.ndim != 2:
        raise ValueError(f"features must be an (N, D) array, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError("the features contain NaN/inf")
    return out


# -- FID ---------------------------------------------------------------------------------

def frechet_distance(mu1, cov1, mu2, cov2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2):
    ``|mu1 − mu2|² + tr(cov1 + cov2 − 2 (cov1 cov2)^½)``."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    # held-out sets often have fewer samples than features, so the covariances are
    # singular: a tiny ridge keeps sqrtm well defined (identical sets still give 0)
    off = eps * np.eye(cov1.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm((cov1 + off) @ (cov2 + off))
    if not np.all(np.isfinite(covmean)):
        raise ValueError("the feature covariances are degenerate (NaN/inf in their square root)")
    covmean = np.real(covmean)
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + off) + np.trace(cov2 + off) - 2.0 * np.trace(covmean))
    # tiny negative values are round-off of sqrtm for (near-)identical sets
    return max(d, 0.0)


def _gaussian_fit(f: np.ndarray):
    if f.shape[0] < 2:
        raise ValueError("at least two feature rows per set are needed for a covariance")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid(a, b, features: FeatureSpec = None, model=None, grid: CanonicalGrid = DEFAULT_GRID) -> float:
    """Fréchet distance between the feature distributions of two sets of stacks.

    Parameters
    ----------
    a, b : list of AFMStack, or arrays on the canonical grid
    features : None, "net", "descriptor" or callable
        None / "net": features of the project's feature network (64 channel means
        of the last layer, one row per 64 × 64 tile, i.e. four per 128 × 128 stack).
        A callable receives the list of normalised canonical arrays and returns
        ``(N, D)`` rows.
    model : path or FeatureNet, optional
        Feature-network weights (default: the shipped ``models/feature_net.pt``).

    Raises
    ------
    FileNotFoundError
        (:class:`~napari_afm_style.models.feature_net.FeatureNetNotAvailable`) when no
        feature-network weights exist and no ``features`` callable is given; there is no
        silent fallback, so FID numbers always mean the same features.
    """
    fa = feature_matrix(a, features, model, grid)
    fb = feature_matrix(b, features, model, grid)
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature sizes differ: {fa.shape[1]} vs {fb.shape[1]}")
    return frechet_distance(*_gaussian_fit(fa), *_gaussian_fit(fb))


# -- MMD ---------------------------------------------------------------------------------

def mmd(a, b, features: FeatureSpec = "descriptor", bandwidth: float | None = None, model=None,
        standardise: bool = True, grid: CanonicalGrid = DEFAULT_GRID) -> float:
    """Unbiased squared MMD between two sets of stacks (Gaussian kernel, median heuristic).

    Parameters
    ----------
    a, b : list of AFMStack, or arrays on the canonical grid
    features : "descriptor" (default), "net" or callable
        See :func:`feature_matrix`. The descriptor needs no trained weights.
    bandwidth : float, optional
        Kernel width σ in (standardised) feature units; default the median heuristic.
    standardise : bool
        Scale every feature to unit variance over the pooled sets first, so no single
        feature dominates the distances.
    """
    fa = feature_matrix(a, features, model, grid)
    fb = feature_matrix(b, features, model, grid)
    if standardise:
        pooled = np.concatenate([fa, fb])
        mu, sd = pooled.mean(0), pooled.std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        fa, fb = (fa - mu) / sd, (fb - mu) / sd
    fa, fb = np.asarray(fa, dtype=np.float64), np.asarray(fb, dtype=np.float64)
    return gaussian_mmd2(fa, fb, median_bandwidth(np.concatenate([fa, fb])) if bandwidth is None else float(bandwidth))
