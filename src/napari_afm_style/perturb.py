"""Handcrafted perturbations of Δf stacks: the artifacts of real constant-height scans.

Every function works on a Δf array of shape ``(n_heights, ny, nx)`` (Hz; a single 2D
slice is accepted too) and returns a new ``float32`` array of the same shape; the input
is never modified. Functions that draw random fields take a ``numpy.random.Generator``
(or an integer seed) as ``rng``; transforms that are fully set by their physical
parameters (plane, drift, misregistration, cut-outs, contrast) take those parameters
explicitly, and ``random_*`` helpers draw them, so that what was applied can be recorded
and, for lateral shifts, applied to the atom labels (:func:`shift_positions`).

Scan geometry: rows are scan lines; the fast scan axis is x (columns) unless
``fast_axis="y"``; the frame is acquired line after line along the slow axis, so a
quantity that changes in time changes from line to line.

:func:`random_perturbation` composes a random subset with ranges calibrated on the
experiment-like scans of this project (see ``docs/structures_and_perturbations.md`` and
:data:`EXPERIMENT_LIKE_STATS`), scaled by ``strength``; :func:`apply_to_stack` does the
same on an :class:`~napari_afm_style.stack.AFMStack` and records the history.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .stack import AFMStack

__all__ = [
    "white_noise",
    "pink_noise",
    "scan_line_offsets",
    "background_plane",
    "drift",
    "misregistration",
    "random_walk_shifts",
    "cutouts",
    "random_cutout_boxes",
    "contrast_change",
    "random_perturbation",
    "apply_to_stack",
    "perturbed_data",
    "shift_positions",
    "EXPERIMENT_LIKE_STATS",
]

#: Statistics of the 160 experiment-like scans (10 × 128 × 128, 0.125 Å pixels), measured
#: for the calibration of :func:`random_perturbation` (see the docs for the method).
EXPERIMENT_LIKE_STATS = {
    "white_noise_Hz": {"p5": 0.025, "median": 0.067, "p95": 0.186},
    "line_offset_rms_Hz": {"p5": 0.021, "median": 0.048, "p95": 0.078},
    "largest_line_step_Hz": {"p5": 0.11, "median": 0.24, "p95": 0.50},
    "plane_gradient_Hz_per_A": {"p5": 0.012, "median": 0.051, "p95": 0.107},
    "slice_mean_Hz": {"p5": -3.03, "median": -1.63, "p95": -0.28},
    "slice_min_Hz": {"p5": -5.73, "median": -3.81, "p95": -1.97},
    "slice_max_Hz": {"p5": -1.21, "median": 0.01, "p95": 1.35},
    "contrast_p1_p99_Hz": {"p5": 1.84, "median": 2.94, "p95": 4.43},
    "adjacent_slice_shift_A": {"median": 0.0, "p90": 0.25},
}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator or a non-negative integer seed, got {rng!r}")


def _as_stack(df) -> tuple[np.ndarray, bool]:
    """float32 copy with shape (n, ny, nx) and whether the input was 2D."""
    a = np.asarray(df)
    if a.ndim not in (2, 3):
        raise ValueError(
            f"Δf must be an array of shape (n_heights, ny, nx) or (ny, nx); got shape {a.shape}"
        )
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"Δf must be real numbers, got dtype {a.dtype}")
    if min(a.shape) < 1:
        raise ValueError(f"Δf is empty (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError("Δf contains NaN or infinite values; fill or crop them before perturbing")
    flat = a.ndim == 2
    return np.array(a[None] if flat else a, dtype=np.float32), flat


def _out(a: np.ndarray, flat: bool) -> np.ndarray:
    a = a.astype(np.float32, copy=False)
    return a[0] if flat else a


def _nonneg(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return value


def _per_slice(name: str, value, n: int, width: int | None = None) -> np.ndarray:
    """Broadcast a scalar / pair to one value (or pair) per slice."""
    v = np.asarray(value, dtype=float)
    shape = (n,) if width is None else (n, width)
    try:
        v = np.broadcast_to(v, shape).copy()
    except ValueError:
        want = "a number or one per height" if width is None else f"{width} numbers or ({n}, {width})"
        raise ValueError(f"{name} must be {want}; got shape {np.shape(value)}") from None
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return v


def _check_axis(fast_axis: str) -> str:
    if fast_axis not in ("x", "y"):
        raise ValueError(f"fast_axis must be 'x' or 'y', got {fast_axis!r}")
    return fast_axis


# ------------------------------------------------------------------------------------------
# noise
# ------------------------------------------------------------------------------------------
def white_noise(df, rng, sigma_Hz: float) -> np.ndarray:
    """Add white Gaussian noise: the detector (PLL / frequency demodulator) noise.

    Parameters
    ----------
    df : array_like, shape (n_heights, ny, nx)
        Δf in Hz.
    rng : numpy.random.Generator or int
    sigma_Hz : float
        Root-mean-square of the noise in Hz (experiment-like scans: median ≈ 0.07 Hz).
    """
    a, flat = _as_stack(df)
    sigma = _nonneg("sigma_Hz", sigma_Hz)
    if sigma > 0:
        a += _rng(rng).normal(0.0, sigma, a.shape).astype(np.float32)
    return _out(a, flat)


def pink_noise(df, rng, rms_Hz: float, exponent: float = 1.0, fast_axis: str = "x") -> np.ndarray:
    """Add 1/f^exponent noise in acquisition time (slow drifts of the detector and tip).

    Each slice is one frame acquired pixel after pixel along the raster (fast axis, then
    the next line); the noise is a Gaussian time series with power spectral density
    ∝ 1/f^exponent (f > 0, no DC), laid out along that raster. It therefore shows up as
    streaks along the fast axis and slow wandering from line to line. Each slice gets an
    independent realisation scaled to exactly ``rms_Hz`` (sample standard deviation).

    Parameters
    ----------
    rms_Hz : float
        Root-mean-square of the added noise per slice, Hz.
    exponent : float
        Spectral exponent (0 = white, 1 = pink, 2 = Brownian); in [0, 3].
    fast_axis : {"x", "y"}
        Fast scan axis.
    """
    a, flat = _as_stack(df)
    rms = _nonneg("rms_Hz", rms_Hz)
    exponent = float(exponent)
    if not 0.0 <= exponent <= 3.0:
        raise ValueError(f"exponent must be in [0, 3] (0 white, 1 pink, 2 Brownian), got {exponent}")
    _check_axis(fast_axis)
    if rms == 0:
        return _out(a, flat)
    g = _rng(rng)
    n, ny, nx = a.shape
    m = ny * nx
    f = np.fft.rfftfreq(m)
    amp = np.zeros_like(f)
    amp[1:] = f[1:] ** (-exponent / 2.0)
    for k in range(n):
        spec = amp * (g.normal(size=f.size) + 1j * g.normal(size=f.size))
        series = np.fft.irfft(spec, n=m)
        series -= series.mean()
        std = series.std()
        series = series * (rms / std) if std > 0 else series
        frame = series.reshape(ny, nx) if fast_axis == "x" else series.reshape(nx, ny).T
        a[k] += frame.astype(np.float32)
    return _out(a, flat)


def scan_line_offsets(
    df,
    rng,
    offset_Hz: float,
    probability: float,
    persistent: bool = False,
    fast_axis: str = "x",
) -> np.ndarray:
    """Add scan-line offsets: jumps of Δf between consecutive scan lines.

    Each scan line of each slice jumps with ``probability``; a jump is Gaussian with
    rms ``offset_Hz``. ``persistent=False``: only that line is offset (a glitch line,
    e.g. a transient of the oscillation control). ``persistent=True``: the offset stays
    for the rest of the frame (a step, e.g. a tip change or an adsorbate hopping on
    the tip apex).

    Parameters
    ----------
    offset_Hz : float
        Root-mean-square of a jump, Hz.
    probability : float
        Probability that a given scan line jumps, in [0, 1].
    persistent : bool
        Steps (True) or single-line offsets (False).
    fast_axis : {"x", "y"}
        Scan lines run along this axis (they are rows for "x").
    """
    a, flat = _as_stack(df)
    off = _nonneg("offset_Hz", offset_Hz)
    p = float(probability)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    _check_axis(fast_axis)
    if off == 0 or p == 0:
        return _out(a, flat)
    g = _rng(rng)
    n, ny, nx = a.shape
    n_lines = ny if fast_axis == "x" else nx
    jumps = np.where(g.random((n, n_lines)) < p, g.normal(0.0, off, (n, n_lines)), 0.0)
    if persistent:
        jumps = np.cumsum(jumps, axis=1)
    if fast_axis == "x":
        a += jumps[:, :, None].astype(np.float32)
    else:
        a += jumps[:, None, :].astype(np.float32)
    return _out(a, flat)


# ------------------------------------------------------------------------------------------
# deterministic transforms
# ------------------------------------------------------------------------------------------
def background_plane(
    df,
    gradient_Hz_per_A=(0.0, 0.0),
    offset_Hz=0.0,
    pixel_size_A: float = 0.125,
) -> np.ndarray:
    """Add a plane per slice: sample tilt and long-range background.

    A tilt of the sample with respect to the scan plane changes the tip–sample distance
    linearly across the frame, so Δf changes linearly (gradient ≈ dΔf/dz × tilt; larger
    at close heights). The offset is the part of the long-range (macroscopic tip vdW,
    electrostatic) Δf that a simulation of a finite model misses.

    Parameters
    ----------
    gradient_Hz_per_A : (gx, gy) or array of shape (n_heights, 2)
        dΔf/dx and dΔf/dy in Hz per Å, one pair for all slices or one per slice.
    offset_Hz : float or array of shape (n_heights,)
        Δf added at the centre of the image, Hz.
    pixel_size_A : float
        Pixel size in Å.

    Notes
    -----
    The plane is zero at the image centre apart from the offset, so a pure gradient does
    not change the mean of a slice.
    """
    a, flat = _as_stack(df)
    n, ny, nx = a.shape
    px = float(pixel_size_A)
    if not np.isfinite(px) or px <= 0:
        raise ValueError(f"pixel_size_A must be positive, got {pixel_size_A}")
    grad = _per_slice("gradient_Hz_per_A", gradient_Hz_per_A, n, 2)
    off = _per_slice("offset_Hz", offset_Hz, n)
    x = (np.arange(nx) - (nx - 1) / 2) * px
    y = (np.arange(ny) - (ny - 1) / 2) * px
    plane = grad[:, 0, None, None] * x[None, None, :] + grad[:, 1, None, None] * y[None, :, None]
    a += (plane + off[:, None, None]).astype(np.float32)
    return _out(a, flat)


def drift(
    df,
    drift_A=(0.0, 0.0),
    pixel_size_A: float = 0.125,
    fast_axis: str = "x",
    order: int = 1,
) -> np.ndarray:
    """Apply linear thermal / piezo-creep drift during the acquisition of each frame.

    The sample moves by ``drift_A`` (dx, dy) while a frame is recorded; line ``s`` of
    ``S`` slow-axis lines is recorded at time ``t = s / (S - 1)``, so it sees the sample
    displaced by ``t · drift_A``: drift along the fast axis shears the image, drift
    along the slow axis stretches or compresses it. Content at true position ``p``
    appears at ``p + t(p) · drift_A`` (see :func:`shift_positions`). Every slice gets
    the same drift (constant drift rate); the creep between slices is
    :func:`misregistration`. Pixels that come from outside the frame repeat the edge.

    Parameters
    ----------
    drift_A : (dx, dy)
        Total displacement of the sample over one frame, Å.
    pixel_size_A : float
        Pixel size in Å.
    fast_axis : {"x", "y"}
        Fast scan axis (time runs along the other one).
    order : int
        Spline order of the interpolation (1 = linear, no overshoot).
    """
    a, flat = _as_stack(df)
    d = _per_slice("drift_A", drift_A, 1, 2)[0]
    _check_axis(fast_axis)
    if not np.any(d):
        return _out(a, flat)
    n, ny, nx = a.shape
    dpx = d / float(pixel_size_A)
    iy, ix = np.mgrid[0:ny, 0:nx].astype(float)
    t = iy / max(ny - 1, 1) if fast_axis == "x" else ix / max(nx - 1, 1)
    coords = np.array([iy - dpx[1] * t, ix - dpx[0] * t])
    for k in range(n):
        a[k] = ndimage.map_coordinates(a[k], coords, order=order, mode="nearest")
    return _out(a, flat)


def misregistration(df, shifts_A, pixel_size_A: float = 0.125, order: int = 1) -> np.ndarray:
    """Shift each slice laterally: misregistration between heights.

    Between the slices of a constant-height stack the tip is retracted / approached and
    the scanner creeps, so successive slices are displaced by small, accumulating
    amounts (a random walk: :func:`random_walk_shifts`). Content of slice ``k`` at true
    position ``p`` appears at ``p + shifts_A[k]``; edges repeat.

    Parameters
    ----------
    shifts_A : array_like, shape (n_heights, 2)
        (dx, dy) per slice, Å.
    pixel_size_A : float
        Pixel size in Å.
    order : int
        Spline order of the interpolation (1 = linear).
    """
    a, flat = _as_stack(df)
    n = a.shape[0]
    s = _per_slice("shifts_A", shifts_A, n, 2) / float(pixel_size_A)
    for k in range(n):
        if np.any(s[k]):
            a[k] = ndimage.shift(a[k], (s[k, 1], s[k, 0]), order=order, mode="nearest")
    return _out(a, flat)


def random_walk_shifts(
    rng, n_heights: int, step_A: float, anchor: str | int = "closest"
) -> np.ndarray:
    """Per-slice lateral shifts (n_heights, 2) in Å: a 2D Gaussian random walk with rms
    step ``step_A`` per axis between consecutive slices, zero at the anchor slice
    (``"closest"`` = the last index, ``"farthest"`` = index 0, or an index). Labels refer
    to the anchor slice, so they need no shift."""
    g = _rng(rng)
    n = int(n_heights)
    if n < 1:
        raise ValueError(f"n_heights must be positive, got {n_heights}")
    step = _nonneg("step_A", step_A)
    idx = {"closest": n - 1, "farthest": 0}.get(anchor, anchor) if isinstance(anchor, str) else int(anchor)
    if not isinstance(idx, (int, np.integer)) or not -n <= idx < n:
        raise ValueError(f"anchor must be 'closest', 'farthest' or a slice index < {n}, got {anchor!r}")
    walk = np.vstack([np.zeros((1, 2)), np.cumsum(g.normal(0.0, step, (n - 1, 2)), axis=0)])
    return walk - walk[idx]


def cutouts(df, boxes, fill: str | float = "local_mean") -> np.ndarray:
    """Replace rectangles by a constant: data dropouts.

    Stands for regions where the data are lost (the PLL loses lock after a tip
    instability, a glitch masked out by the experimenter) and are filled with a neutral
    value, never NaN.

    Parameters
    ----------
    boxes : sequence of (k, y0, x0, y1, x1)
        Slice index (-1 = all slices) and the half-open pixel rectangle
        ``[y0:y1, x0:x1]`` (clipped to the image).
    fill : "local_mean", "zero" or float
        "local_mean": the mean Δf of a 2-pixel frame around the rectangle in that slice;
        "zero": 0 Hz; a number: that Δf in Hz.
    """
    a, flat = _as_stack(df)
    n, ny, nx = a.shape
    if not (fill in ("local_mean", "zero") or isinstance(fill, (int, float, np.floating))):
        raise ValueError(f"fill must be 'local_mean', 'zero' or a number (Hz), got {fill!r}")
    for box in boxes:
        if len(box) != 5:
            raise ValueError(f"each box must be (k, y0, x0, y1, x1), got {box!r}")
        k, y0, x0, y1, x1 = (int(v) for v in box)
        if not -1 <= k < n:
            raise ValueError(f"box slice index {k} out of range for {n} heights (-1 = all)")
        y0, y1 = max(0, y0), min(ny, y1)
        x0, x1 = max(0, x0), min(nx, x1)
        if y1 <= y0 or x1 <= x0:
            continue
        for kk in range(n) if k == -1 else (k,):
            if fill == "local_mean":
                ya, yb, xa, xb = max(0, y0 - 2), min(ny, y1 + 2), max(0, x0 - 2), min(nx, x1 + 2)
                ring = np.ones((yb - ya, xb - xa), bool)
                ring[y0 - ya : y1 - ya, x0 - xa : x1 - xa] = False
                value = float(a[kk, ya:yb, xa:xb][ring].mean()) if ring.any() else float(a[kk].mean())
            else:
                value = 0.0 if fill == "zero" else float(fill)
            a[kk, y0:y1, x0:x1] = value
    return _out(a, flat)


def random_cutout_boxes(
    rng,
    shape: Sequence[int],
    n_boxes: int,
    size_A=(1.0, 4.0),
    pixel_size_A: float = 0.125,
    all_heights_probability: float = 0.5,
) -> list[tuple[int, int, int, int, int]]:
    """Random rectangles for :func:`cutouts`: sides uniform in ``size_A`` (Å), random
    position, in one random slice or (with ``all_heights_probability``) all slices."""
    g = _rng(rng)
    n, ny, nx = (1, *shape) if len(shape) == 2 else tuple(shape)
    lo, hi = (float(v) for v in size_A)
    if not 0 < lo <= hi:
        raise ValueError(f"size_A must be (min, max) with 0 < min <= max, got {size_A!r}")
    boxes = []
    for _ in range(int(n_boxes)):
        h = max(1, min(ny, int(round(g.uniform(lo, hi) / pixel_size_A))))
        w = max(1, min(nx, int(round(g.uniform(lo, hi) / pixel_size_A))))
        y0 = int(g.integers(0, ny - h + 1))
        x0 = int(g.integers(0, nx - w + 1))
        k = -1 if g.random() < all_heights_probability else int(g.integers(n))
        boxes.append((k, y0, x0, y0 + h, x0 + w))
    return boxes


def contrast_change(df, gain=1.0, gamma=1.0) -> np.ndarray:
    """Change the contrast of each slice: gain and gamma.

    ``gain`` scales Δf (errors of the amplitude / stiffness calibration, or a slightly
    different tip; Δf ∝ force gradient / k). ``gamma`` is a phenomenological nonlinearity
    of the image contrast, standing for tips whose CO relaxes more or less than the
    simulated one (sharper or blunter repulsive features): within each slice
    ``Δf' = min + (max − min) · u**gamma`` with ``u = (Δf − min) / (max − min)``, which
    keeps the slice's minimum and maximum. The gain is applied after the gamma.

    Parameters
    ----------
    gain : float or array of shape (n_heights,)
        Multiplicative factor per slice (> 0).
    gamma : float or array of shape (n_heights,)
        Exponent per slice (> 0; < 1 brightens the repulsive features, > 1 darkens).
    """
    a, flat = _as_stack(df)
    n = a.shape[0]
    g = _per_slice("gain", gain, n)
    gm = _per_slice("gamma", gamma, n)
    if np.any(g <= 0) or np.any(gm <= 0):
        raise ValueError("gain and gamma must be positive")
    for k in range(n):
        if gm[k] != 1.0:
            lo, hi = float(a[k].min()), float(a[k].max())
            if hi > lo:
                u = (a[k].astype(np.float64) - lo) / (hi - lo)
                a[k] = (lo + (hi - lo) * u ** gm[k]).astype(np.float32)
        if g[k] != 1.0:
            a[k] *= np.float32(g[k])
    return _out(a, flat)


# ------------------------------------------------------------------------------------------
# composition
# ------------------------------------------------------------------------------------------
def _loguniform(g: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(g.uniform(math.log(lo), math.log(hi))))


def random_perturbation(
    df,
    rng,
    strength: float = 1.0,
    pixel_size_A: float = 0.125,
    fast_axis: str = "x",
) -> tuple[np.ndarray, dict]:
    """Apply a random, physically plausible subset of the perturbations.

    Order (as in an experiment: geometry of the acquisition first, detector last):
    misregistration (p = 0.5; random walk, rms step U(0.02, 0.1)·s Å per slice, anchored
    at the closest slice), drift (p = 0.5; |D| = U(0, 0.3)·s Å over the frame, random
    direction), contrast (p = 0.5; gain exp(N(0, 0.08·s)), gamma exp(N(0, 0.15·s)) per
    slice), background plane (p = 0.6; |∇| = U(0, 0.1)·s Hz/Å in one random direction,
    ×1…1.5 from the farthest to the closest slice; offset a + b·k/(n−1) with
    a ~ N(0, 0.3·s), b ~ N(0, 0.2·s) Hz), single-line offsets (p = 0.7;
    U(0.03, 0.09)·s Hz, probability U(0.1, 1) per line), persistent steps (p = 0.3;
    U(0.1, 0.4)·s Hz, probability U(0.002, 0.01) per line), 1/f noise (p = 0.6;
    U(0.01, 0.06)·s Hz rms, exponent U(0.8, 1.5)), white noise (p = 0.9;
    log-uniform(0.02, 0.15)·s Hz), cut-outs (p = min(1, 0.1·s); one or two 1–4 Å boxes,
    local-mean fill). ``s`` is ``strength``; 0 returns an unchanged copy.

    The ranges come from the experiment-like scans (:data:`EXPERIMENT_LIKE_STATS`).

    Parameters
    ----------
    df : array_like, shape (n_heights, ny, nx)
        Δf in Hz.
    rng : numpy.random.Generator or int
    strength : float
        Scale of every magnitude (≥ 0).
    pixel_size_A : float
        Pixel size in Å.
    fast_axis : {"x", "y"}

    Returns
    -------
    numpy.ndarray
        Perturbed Δf, float32, same shape.
    dict
        JSON-serialisable record: ``strength``, ``pixel_size_A``, ``fast_axis``,
        ``shape`` and ``applied`` (one entry per perturbation with its parameters, in
        order). Lateral displacements of the content (``drift``, ``misregistration``)
        are there; :func:`shift_positions` applies them to atom positions. At strength 1
        they stay below ≈ 0.3 Å for labels (the drift), smaller than the 0.5 Å matching
        tolerance.
    """
    a, flat = _as_stack(df)
    s = _nonneg("strength", strength)
    g = _rng(rng)
    _check_axis(fast_axis)
    n, ny, nx = a.shape
    record: dict = {
        "strength": s,
        "pixel_size_A": float(pixel_size_A),
        "fast_axis": fast_axis,
        "shape": [n, ny, nx],
        "applied": [],
    }
    if s == 0:
        return _out(a, flat), record
    applied = record["applied"]

    if n > 1 and g.random() < 0.5:
        step = g.uniform(0.02, 0.1) * s
        shifts = random_walk_shifts(g, n, step, "closest")
        a = misregistration(a, shifts, pixel_size_A)
        applied.append({"name": "misregistration", "step_A": step, "shifts_A": shifts.tolist(),
                        "anchor_index": n - 1})
    if g.random() < 0.5:
        mag = g.uniform(0.0, 0.3) * s
        ang = g.uniform(0, 2 * math.pi)
        d = [mag * math.cos(ang), mag * math.sin(ang)]
        a = drift(a, d, pixel_size_A, fast_axis)
        applied.append({"name": "drift", "drift_A": d})
    if g.random() < 0.5:
        gain = np.exp(g.normal(0.0, 0.08 * s, n))
        gamma = np.exp(g.normal(0.0, 0.15 * s, n))
        a = contrast_change(a, gain, gamma)
        applied.append({"name": "contrast_change", "gain": gain.tolist(), "gamma": gamma.tolist()})
    if g.random() < 0.6:
        mag = g.uniform(0.0, 0.1) * s
        ang = g.uniform(0, 2 * math.pi)
        scale = np.linspace(1.0, 1.5, n)
        grad = np.outer(scale, [mag * math.cos(ang), mag * math.sin(ang)])
        off = g.normal(0.0, 0.3 * s) + g.normal(0.0, 0.2 * s) * np.linspace(0.0, 1.0, n)
        a = background_plane(a, grad, off, pixel_size_A)
        applied.append({"name": "background_plane", "gradient_Hz_per_A": grad.tolist(),
                        "offset_Hz": np.atleast_1d(off).tolist()})
    if g.random() < 0.7:
        off, p = g.uniform(0.03, 0.09) * s, g.uniform(0.1, 1.0)
        a = scan_line_offsets(a, g, off, p, persistent=False, fast_axis=fast_axis)
        applied.append({"name": "scan_line_offsets", "offset_Hz": off, "probability": p, "persistent": False})
    if g.random() < 0.3:
        off, p = g.uniform(0.1, 0.4) * s, g.uniform(0.002, 0.01)
        a = scan_line_offsets(a, g, off, p, persistent=True, fast_axis=fast_axis)
        applied.append({"name": "scan_line_offsets", "offset_Hz": off, "probability": p, "persistent": True})
    if g.random() < 0.6:
        rms, ex = g.uniform(0.01, 0.06) * s, g.uniform(0.8, 1.5)
        a = pink_noise(a, g, rms, ex, fast_axis)
        applied.append({"name": "pink_noise", "rms_Hz": rms, "exponent": ex})
    if g.random() < 0.9:
        sigma = _loguniform(g, 0.02, 0.15) * s
        a = white_noise(a, g, sigma)
        applied.append({"name": "white_noise", "sigma_Hz": sigma})
    if g.random() < min(1.0, 0.1 * s):
        boxes = random_cutout_boxes(g, a.shape, int(g.integers(1, 3)), (1.0, 4.0), pixel_size_A)
        a = cutouts(a, boxes, "local_mean")
        applied.append({"name": "cutouts", "boxes": [list(b) for b in boxes], "fill": "local_mean"})
    json.dumps(record)  # the record must stay serialisable (it goes into metadata)
    return _out(a, flat), record


def perturbed_data(data_Hz: np.ndarray, rng: np.random.Generator, strength: float,
                   pixel_size_A: float) -> np.ndarray:
    """Only the perturbed Δf of :func:`random_perturbation` (float32, same shape; the
    training regime "handcrafted" and its evaluation use this one step)."""
    out = random_perturbation(data_Hz, rng, strength, pixel_size_A)
    if isinstance(out, tuple):  # (perturbed Δf, record of what was applied)
        out = out[0]
    out = np.asarray(out, dtype=np.float32)
    if out.shape != data_Hz.shape:
        raise RuntimeError(f"random_perturbation changed the stack shape {data_Hz.shape} → {out.shape}")
    return out


def apply_to_stack(stack: AFMStack, rng, strength: float = 1.0, fast_axis: str = "x") -> AFMStack:
    """A perturbed copy of ``stack`` (see :func:`random_perturbation`); the record is
    appended to ``metadata["history"]`` as step ``"perturb"``."""
    if not isinstance(stack, AFMStack):
        raise ValueError(f"apply_to_stack needs an AFMStack, got {type(stack).__name__}")
    data, record = random_perturbation(stack.data, rng, strength, stack.pixel_size_A, fast_axis)
    record["origin_A"] = stack.origin_A.tolist()
    return stack.replace(data=data).with_history("perturb", **record)


def shift_positions(positions_A, record: dict, origin_A=(0.0, 0.0)) -> np.ndarray:
    """Where atoms appear after the lateral perturbations in ``record``.

    Parameters
    ----------
    positions_A : array_like, shape (N, 2) or (N, 3)
        True positions in Å, in the stack's frame (z is left unchanged).
    record : dict
        The record of :func:`random_perturbation` (or a history entry of
        :func:`apply_to_stack`, whose ``origin_A`` is then used).
    origin_A : (float, float)
        (x, y) of pixel [0, 0] in Å, if the record does not say.

    Returns
    -------
    numpy.ndarray
        Positions where the content appears: drift moves a point by ``t · drift_A``
        with ``t`` the acquisition time of the line it is seen on; misregistration moves
        it by the shift of the anchor slice (0 by construction: labels refer to the
        anchor slice).
    """
    p = np.array(positions_A, dtype=float)
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"positions_A must have shape (N, 2) or (N, 3), got {p.shape}")
    origin = np.asarray(record.get("origin_A", origin_A), dtype=float)
    px = float(record["pixel_size_A"])
    _, ny, nx = record["shape"]
    fast = record.get("fast_axis", "x")
    for step in record.get("applied", []):
        if step["name"] == "misregistration":
            shifts = np.asarray(step["shifts_A"], dtype=float)
            p[:, :2] += shifts[int(step["anchor_index"])]
        elif step["name"] == "drift":
            dx, dy = step["drift_A"]
            if fast == "x":
                length = max(ny - 1, 1) * px
                # line of appearance y' solves y' = y + dy · (y' − y0) / L
                y_app = (p[:, 1] - dy * origin[1] / length) / (1.0 - dy / length)
                t = (y_app - origin[1]) / length
                p[:, 0] += dx * t
                p[:, 1] = y_app
            else:
                length = max(nx - 1, 1) * px
                x_app = (p[:, 0] - dx * origin[0] / length) / (1.0 - dx / length)
                t = (x_app - origin[0]) / length
                p[:, 1] += dy * t
                p[:, 0] = x_app
    return p
