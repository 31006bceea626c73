"""The one unbiased Gaussian-kernel MMD² estimator and its median-heuristic bandwidth.

Used by the order statistics (:func:`napari_afm_style.order.mmd2_unbiased`, which adds
deterministic subsampling of large samples) and by the style metrics
(:func:`napari_afm_style.metrics.mmd`, on image features)."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["gaussian_mmd2", "median_bandwidth"]


def median_bandwidth(z: np.ndarray) -> float:
    """Median heuristic: the median of the non-zero distances between the rows of ``z``
    (1.0 when all rows coincide).

    >>> median_bandwidth(np.array([[0.0], [1.0], [3.0]]))
    2.0
    """
    from scipy.spatial.distance import pdist

    d = pdist(np.asarray(z, dtype=np.float64))
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def gaussian_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Unbiased MMD² (Gretton et al., JMLR 13, 723 (2012)) with ``k(p, q) = exp(−|p − q|² / (2σ²))``.

    ``MMD² = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j)``;
    ``x`` (n, d) and ``y`` (m, d) need n, m ≥ 2; σ = ``bandwidth`` > 0.

    >>> round(gaussian_mmd2(np.zeros((3, 1)), np.zeros((2, 1)), 1.0), 12)
    0.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 points per sample; got {x.shape[0]} and {y.shape[0]}")
    if not (bandwidth > 0 and math.isfinite(bandwidth)):
        raise ValueError(f"bandwidth must be positive; got {bandwidth!r}")
    g = -0.5 / float(bandwidth) ** 2
    n, m = x.shape[0], y.shape[0]
    kxx = np.exp(g * cdist(x, x, "sqeuclidean"))
    kyy = np.exp(g * cdist(y, y, "sqeuclidean"))
    kxy = np.exp(g * cdist(x, y, "sqeuclidean"))
    # Diagonal terms are exactly 1 (cdist gives exact zeros) and are left out for unbiasedness.
    return float((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2.0 * kxy.mean())
