"""Our frames → ppafm's scan window: the z step, the Δf steps, the slices to keep and the
force-field grid boxes (:func:`plan_scan`, :func:`box_lvec`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..stack import AFMStack
from .parameters import TipParameters

__all__ = ["ScanPlan", "plan_scan", "box_lvec", "distance_to_box"]

#: ppafm's Δf convolution kernel keeps its weights in a local array of 64.
_MAX_DF_STEPS = 64


@dataclass
class ScanPlan:
    dz_A: float
    df_steps: int
    amplitude_eff_A: float
    scan_window: tuple
    scan_dim: tuple
    #: for every height of ``like``: (fine slice j0, fine slice j1, weight of j1)
    slices: list
    interpolated: bool
    pp_lo: np.ndarray  # lower corner (x, y, z) of the volume the probe particle visits
    pp_hi: np.ndarray

    def to_dict(self) -> dict:
        (x0, y0, z0), (x1, y1, z1) = self.scan_window
        return {
            "scan_step_z_A": self.dz_A,
            "df_steps": self.df_steps,
            "amplitude_effective_A": self.amplitude_eff_A,
            "ppafm_scan_window_A": [[x0, y0, z0], [x1, y1, z1]],
            "ppafm_scan_dim": list(self.scan_dim),
            "heights_interpolated": self.interpolated,
        }


def _choose_dz(heights: np.ndarray, amplitude_A: float, max_step: float) -> tuple[float, bool]:
    """z step of the approach and whether heights must be interpolated.

    The largest step ≤ ``max_step`` that puts every height on the grid (preferring one that
    makes the peak-to-peak amplitude a whole number of steps); else ``max_step`` with
    linear interpolation between slices. ppafm's Δf kernel takes at most 64 steps per
    oscillation, which bounds the step from below.
    """
    min_step = 2 * amplitude_A / _MAX_DF_STEPS
    if min_step > max_step:
        return min_step, heights.size > 1
    offsets = heights[0] - heights
    base = max_step if heights.size == 1 else float(np.min(np.diff(-heights)))
    valid = []
    for m in range(1, 201):
        dz = base / m
        if dz > max_step * (1 + 1e-9):
            continue
        if dz < max(max_step / 5, min_step):
            break
        t = offsets / dz
        if np.all(np.abs(t - np.round(t)) < 1e-4 * max(1.0, float(np.max(t)))):
            valid.append(dz)
    if not valid:
        return max_step, True
    valid = [round(dz, 9) for dz in valid]  # 0.1, not 0.09999999999999964
    for dz in valid:
        n = 2 * amplitude_A / dz
        if abs(n - round(n)) < 1e-3 and dz >= valid[0] / 2:
            return dz, False
    return valid[0], False


def plan_scan(like: AFMStack, tip: TipParameters, height_offset_A: float, max_step: float) -> ScanPlan:
    heights = like.heights_A + height_offset_A
    dz, interpolated = _choose_dz(heights, like.amplitude_A, max_step)
    # ppafm's df_steps·dz is the peak-to-peak amplitude (its AFMulator.amplitude).
    df_steps = min(_MAX_DF_STEPS, max(2, int(round(2 * like.amplitude_A / dz))))
    amp_eff = df_steps * dz / 2
    span = (heights[0] - heights[-1]) / dz
    n_fine = int(round(span)) + 1 if not interpolated else int(math.ceil(span - 1e-9)) + 1
    nz = n_fine - 1 + df_steps
    depth = tip.probe_depth_A
    # Height label of fine slice j (ppafm's plot convention) = z_top - dz*df_steps + A - j*dz
    # - depth = z_top - A_eff - depth - j*dz, so the anchor's top z is:
    z_top = heights[0] + amp_eff + depth
    z_bottom = z_top - nz * dz
    ny, nx = like.shape[1:]
    rx, ry = tip.r0_A[0], tip.r0_A[1]
    x0 = like.origin_A[0] - rx
    y0 = like.origin_A[1] - ry
    x1 = x0 + (nx - 1) * like.pixel_size_A
    y1 = y0 + (ny - 1) * like.pixel_size_A
    slices = []
    for h in heights:
        t = (heights[0] - h) / dz
        j0 = int(math.floor(t + 1e-6))
        w = t - j0
        if w < 1e-6 or j0 + 1 >= n_fine:
            slices.append((min(j0, n_fine - 1), min(j0, n_fine - 1), 0.0))
        else:
            slices.append((j0, j0 + 1, float(w)))
    # probe particle (unrelaxed) visits anchor + (rx, ry, -depth) for anchor z from z_top
    # down to z_bottom + dz (ppafm steps nz times from the top).
    pp_lo = np.array([like.origin_A[0], like.origin_A[1], z_bottom + dz - depth])
    pp_hi = np.array([like.x_A[-1], like.y_A[-1], z_top - depth])
    return ScanPlan(
        dz_A=float(dz),
        df_steps=df_steps,
        amplitude_eff_A=float(amp_eff),
        scan_window=((float(x0), float(y0), float(z_bottom)), (float(x1), float(y1), float(z_top))),
        scan_dim=(int(nx), int(ny), int(nz)),
        slices=slices,
        interpolated=bool(interpolated),
        pp_lo=pp_lo,
        pp_hi=pp_hi,
    )


def box_lvec(lo: np.ndarray, hi: np.ndarray, points_per_A: float) -> tuple[np.ndarray, tuple]:
    """ppafm lattice vectors of a grid covering ``lo``…``hi`` (one cell of margin).

    Grid points sit on the canonical lattice ``k / points_per_A`` of the geometry's frame,
    whatever the box: two boxes (a small fast one and a whole-structure one, or two
    overlapping windows) sample the force field at the same points, and a scan that is
    mirror-symmetric about a lattice plane samples a mirror-symmetric grid.
    """
    k_lo = np.floor(np.asarray(lo) * points_per_A + 1e-9).astype(int) - 1
    k_hi = np.ceil(np.asarray(hi) * points_per_A - 1e-9).astype(int) + 1
    n = k_hi - k_lo + 1
    # ppafm's force-field kernel runs on a global size rounded up to its work-group size
    # (32) and lets item number nx*ny*nz write one point past the buffer: a grid whose size
    # is a multiple of 32 (x multiple of 4, y of 8) keeps that write inside.
    n[0] = -(-n[0] // 4) * 4
    n[1] = -(-n[1] // 8) * 8
    size = n / points_per_A
    origin = k_lo / points_per_A
    lvec = np.array([origin, [size[0], 0, 0], [0, size[1], 0], [0, 0, size[2]]], dtype=np.float64)
    return lvec, tuple(int(v) for v in n)


def distance_to_box(pos: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    d = np.maximum(0.0, np.maximum(lo - pos, pos - hi))
    return np.sqrt(np.sum(d * d, axis=1))
