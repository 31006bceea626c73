"""Per-height agreement between two Δf stacks of the same scan (e.g. a scan and the
re-simulation of its predicted structure).

Two measures per slice, both insensitive to the unknown Δf offset and scale between
an experiment and a simulation:

* normalised cross-correlation (Pearson r of the pixel values), in [-1, 1];
* structural similarity (SSIM, Wang et al. 2004) of the per-slice standardised images,
  with a Gaussian window of ``sigma_A`` Å — it compares local means, contrasts and
  structure, so it tells apart "same blobs, wrong places" from "same pattern".
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .stack import AFMStack

__all__ = ["ncc_per_height", "ssim_per_height", "match_scores", "difference_stack"]


def _pair(a, b):
    a = a.data if isinstance(a, AFMStack) else np.asarray(a, dtype=np.float64)
    b = b.data if isinstance(b, AFMStack) else np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"stacks differ in shape {a.shape} vs {b.shape}; re-simulate with like=the scan")
    if a.ndim == 2:
        a, b = a[None], b[None]
    return a.astype(np.float64), b.astype(np.float64)


def _standardise(x):
    m = x.mean(axis=(-2, -1), keepdims=True)
    s = x.std(axis=(-2, -1), keepdims=True)
    return (x - m) / np.where(s > 0, s, 1.0)


def ncc_per_height(a, b) -> np.ndarray:
    """Pearson correlation of each slice pair (index 0 farthest).

    >>> x = np.random.default_rng(0).normal(size=(2, 8, 8))
    >>> np.allclose(ncc_per_height(x, 3 * x + 1), 1.0)
    True
    """
    a, b = _pair(a, b)
    za, zb = _standardise(a), _standardise(b)
    return (za * zb).mean(axis=(-2, -1))


def ssim_per_height(a, b, sigma_A: float = 0.5, pixel_size_A: float = 0.125) -> np.ndarray:
    """Mean SSIM of each slice pair after per-slice standardisation."""
    a, b = _pair(a, b)
    za, zb = _standardise(a), _standardise(b)
    sigma = max(sigma_A / pixel_size_A, 0.5)
    c1, c2 = (0.01 * 4) ** 2, (0.03 * 4) ** 2  # dynamic range ~4 std of standardised images
    out = []
    for x, y in zip(za, zb):
        mx, my = ndimage.gaussian_filter(x, sigma), ndimage.gaussian_filter(y, sigma)
        vx = ndimage.gaussian_filter(x * x, sigma) - mx * mx
        vy = ndimage.gaussian_filter(y * y, sigma) - my * my
        cxy = ndimage.gaussian_filter(x * y, sigma) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        out.append(s.mean())
    return np.array(out)


def match_scores(scan: AFMStack, simulated: AFMStack) -> dict:
    """NCC and SSIM per height plus their means, with the heights (Å) they belong to."""
    ncc = ncc_per_height(scan, simulated)
    ssim = ssim_per_height(scan, simulated, pixel_size_A=scan.pixel_size_A)
    return {"heights_A": scan.heights_A.tolist(), "ncc": ncc.tolist(), "ssim": ssim.tolist(),
            "ncc_mean": float(ncc.mean()), "ssim_mean": float(ssim.mean())}


def difference_stack(scan: AFMStack, simulated: AFMStack) -> AFMStack:
    """Per-slice standardised difference (scan − simulation), in units of the slice's
    standard deviation; metadata says so since it is no longer Hz."""
    a, b = _pair(scan, simulated)
    diff = _standardise(a) - _standardise(b)
    meta = {"data_units": "standardised difference (per-slice std), not Hz",
            "height_frame": scan.height_frame}
    return scan.replace(data=diff.astype(np.float32), metadata=meta)
