"""Fit arbitrary Δf stacks to the canonical input of the project's networks.

Real scans come with any lateral size, pixel sizes other than 0.125 Å, 6–15 heights at
uneven steps, sometimes normalised per slice instead of in Hz, and without absolute
heights. The networks (structure discovery and style translation) are trained on one
canonical grid: ``n_heights`` slices ``height_step_A`` apart, counted from the closest
slice, and square pixels of ``pixel_size_A``. Everything here is pure NumPy/SciPy and
records what it did, so a result's metadata says how the input was adapted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from .stack import AFMStack

__all__ = [
    "CanonicalGrid",
    "DEFAULT_GRID",
    "to_canonical",
    "resample_lateral",
    "interpolate_heights",
    "normalise_slices",
    "tile_slices",
    "dihedral",
]


@dataclass(frozen=True)
class CanonicalGrid:
    """The grid a network expects.

    Attributes
    ----------
    n_heights : int
        Number of slices.
    height_step_A : float
        Spacing of the slices in Å, counted upwards from the closest one.
    pixel_size_A : float
        Lateral pixel size in Å.
    min_heights : int
        Fewest input slices that still carry height information; fewer is refused.
    """

    n_heights: int = 10
    height_step_A: float = 0.1
    pixel_size_A: float = 0.125
    min_heights: int = 2

    @property
    def span_A(self) -> float:
        return (self.n_heights - 1) * self.height_step_A

    def relative_heights(self) -> np.ndarray:
        """Heights above the closest slice, farthest first (index 0 farthest)."""
        return self.height_step_A * np.arange(self.n_heights - 1, -1, -1, dtype=np.float64)


DEFAULT_GRID = CanonicalGrid()


def resample_lateral(data: np.ndarray, pixel_size_A: float, target_pixel_size_A: float,
                     order: int = 1) -> np.ndarray:
    """Resample (n, ny, nx) images to a new pixel size keeping the physical window.

    The centre of pixel [0, 0] stays where it is, so the stack's ``origin_A`` is
    unchanged; the output has ``round((n - 1) * p / p_new) + 1`` pixels per axis.

    >>> resample_lateral(np.ones((1, 5, 5)), 0.25, 0.125).shape
    (1, 9, 9)
    """
    data = np.asarray(data, dtype=np.float32)
    if pixel_size_A <= 0 or target_pixel_size_A <= 0:
        raise ValueError("pixel sizes must be positive (Å)")
    if np.isclose(pixel_size_A, target_pixel_size_A, rtol=1e-6):
        return data.copy()
    ratio = pixel_size_A / target_pixel_size_A
    n, ny, nx = data.shape
    new_ny = int(round((ny - 1) * ratio)) + 1
    new_nx = int(round((nx - 1) * ratio)) + 1
    yy = np.arange(new_ny) / ratio
    xx = np.arange(new_nx) / ratio
    # separable linear/cubic interpolation on pixel-centre coordinates
    out = np.empty((n, new_ny, new_nx), dtype=np.float32)
    grid = np.meshgrid(yy, xx, indexing="ij")
    for i in range(n):
        out[i] = ndimage.map_coordinates(data[i], grid, order=order, mode="nearest")
    return out


def interpolate_heights(data: np.ndarray, heights_A: np.ndarray, target_heights_A: np.ndarray):
    """Linear interpolation of slices to ``target_heights_A`` (both farthest first).

    Targets outside the measured range are clamped to the nearest measured slice;
    the returned ``n_clamped`` says how many.
    """
    heights = np.asarray(heights_A, dtype=np.float64)
    target = np.asarray(target_heights_A, dtype=np.float64)
    # np.interp wants increasing abscissae: work closest-first
    h_inc = heights[::-1]
    d_inc = np.asarray(data, dtype=np.float32)[::-1]
    idx = np.clip(np.searchsorted(h_inc, target), 1, len(h_inc) - 1)
    lo, hi = h_inc[idx - 1], h_inc[idx]
    w = np.clip((target - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0).astype(np.float32)
    out = (1 - w)[:, None, None] * d_inc[idx - 1] + w[:, None, None] * d_inc[idx]
    n_clamped = int(np.sum((target < h_inc[0] - 1e-6) | (target > h_inc[-1] + 1e-6)))
    return out.astype(np.float32), n_clamped


def normalise_slices(data: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Zero-mean, unit-variance per slice (removes Hz scale, offsets and per-slice
    normalisation differences between instruments)."""
    data = np.asarray(data, dtype=np.float32)
    mean = data.mean(axis=(-2, -1), keepdims=True)
    std = data.std(axis=(-2, -1), keepdims=True)
    return (data - mean) / np.maximum(std, eps)


#: largest side (canonical pixels) of a window that prediction and translation accept: 128 Å
#: at 0.125 Å, ten times the molecular scans this project is for; larger ones must be cropped
#: (the canonical stack of a 1024² window is 40 MB; of a 25 600² one, 26 GB)
MAX_CANONICAL_PX = 1024


def to_canonical(stack: AFMStack, grid: CanonicalGrid = DEFAULT_GRID, order: int = 1):
    """Adapt ``stack`` to ``grid``; returns ``(canonical_stack, record)``.

    * lateral: resampled to ``grid.pixel_size_A`` over the same window (origin kept);
    * heights: the ``grid.n_heights`` slices ``grid.height_step_A`` apart counted up from
      the CLOSEST measured slice, linearly interpolated; missing range is clamped
      (recorded), since the closest slices carry the repulsive, structural contrast;
    * heights in the result keep the stack's own frame (closest slice unchanged).

    Raises
    ------
    ValueError
        NaN/inf in the data, fewer than ``grid.min_heights`` slices, an image too
        small to hold a molecule (< 4 Å across), or one larger than
        :data:`MAX_CANONICAL_PX` canonical pixels per side.
    """
    data = stack.data
    if not np.all(np.isfinite(data)):
        bad = int(np.sum(~np.isfinite(data)))
        raise ValueError(
            f"the stack contains {bad} NaN/inf pixels; fill or crop them before prediction "
            "or translation (e.g. interpolate dropouts)"
        )
    if stack.n_heights < grid.min_heights:
        raise ValueError(
            f"the stack has {stack.n_heights} height(s); at least {grid.min_heights} "
            "constant-height slices are needed (the networks read contrast changes with height)"
        )
    if min(stack.extent_A) < 4.0:
        raise ValueError(
            f"the scan window {stack.extent_A[0]:.2f} × {stack.extent_A[1]:.2f} Å is too small; "
            "at least 4 Å across is needed"
        )
    side_px = [int(round(e / grid.pixel_size_A)) for e in stack.extent_A]
    if max(side_px) > MAX_CANONICAL_PX:
        raise ValueError(
            f"the scan window {stack.extent_A[0]:.1f} × {stack.extent_A[1]:.1f} Å would be "
            f"{side_px[1]} × {side_px[0]} pixels of {grid.pixel_size_A} Å; at most {MAX_CANONICAL_PX} "
            f"({MAX_CANONICAL_PX * grid.pixel_size_A:.0f} Å) per side are processed: crop the scan to the "
            "region of interest (check the pixel size if the window looks too large)"
        )
    record: dict = {"step": "to_canonical", "grid": asdict(grid),
                    "input_shape": list(stack.shape), "input_pixel_size_A": stack.pixel_size_A,
                    "input_heights_A": stack.heights_A.tolist()}
    lateral = resample_lateral(data, stack.pixel_size_A, grid.pixel_size_A, order=order)
    closest = float(stack.heights_A[-1])
    target = closest + grid.relative_heights()
    slices, n_clamped = interpolate_heights(lateral, stack.heights_A, target)
    span = float(stack.heights_A[0] - closest)
    record.update(
        lateral_resampled=not np.isclose(stack.pixel_size_A, grid.pixel_size_A),
        output_shape=list(slices.shape),
        input_height_span_A=span,
        n_heights_clamped=n_clamped,
    )
    if n_clamped:
        record["warning"] = (
            f"the stack spans {span:.2f} Å in height, less than the {grid.span_A:.2f} Å the "
            f"network expects; {n_clamped} farthest slice(s) repeat the farthest measured slice"
        )
    meta = dict(stack.metadata)
    meta["history"] = list(meta.get("history", [])) + [record]
    out = AFMStack(slices, target, grid.pixel_size_A, stack.origin_A, stack.f0_Hz,
                   stack.k_N_per_m, stack.amplitude_A, meta)
    return out, record


def tile_slices(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Start/stop pairs covering ``range(length)`` with tiles of ``tile`` pixels that
    overlap by at least ``overlap`` (for inference on scans larger than memory allows).

    >>> tile_slices(300, 128, 16)
    [(0, 128), (86, 214), (172, 300)]
    """
    if tile >= length:
        return [(0, length)]
    n = int(np.ceil((length - overlap) / (tile - overlap)))
    starts = np.linspace(0, length - tile, n).round().astype(int)
    return [(int(s), int(s) + tile) for s in starts]


def dihedral(data: np.ndarray, atoms_px: np.ndarray, k: int, flip: bool):
    """Apply ``flip`` (mirror x) then ``k`` counter-clockwise 90° turns of the array
    (``np.rot90`` on the last two axes) to images and atom pixel coordinates alike.

    ``np.rot90`` maps array element [i, j] of an (ny, nx) image to [nx - 1 - j, i]; an atom
    at column x, row y therefore moves to column y, row nx - 1 - x.
    """
    a = np.array(atoms_px, dtype=np.float64).reshape(-1, 3)
    if flip:
        data = data[..., ::-1]
        a[:, 0] = data.shape[-1] - 1 - a[:, 0]
    for _ in range(k % 4):
        nx = data.shape[-1]
        data = np.rot90(data, 1, axes=(-2, -1))
        a[:, [0, 1]] = np.stack([a[:, 1], nx - 1 - a[:, 0]], axis=1)
    return np.ascontiguousarray(data), a
