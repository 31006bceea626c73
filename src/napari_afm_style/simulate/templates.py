"""Scan templates: empty stacks that describe a scan for :func:`~napari_afm_style.simulate.simulate`
(over a geometry, or from the ppafm comment of a ppafm XYZ)."""

from __future__ import annotations

import numpy as np

from ..stack import HEIGHT_FRAME_ABSOLUTE, AFMStack
from .parameters import DEFAULT_CLOSEST_GAP_A, EVA2_PER_N_PER_M, SUBSTRATE_NUMBERS, TipParameters, atoms_arrays

__all__ = ["scan_like", "scan_from_ppafm_info", "tip_from_ppafm_info"]

def scan_like(atoms, n_heights: int = 10, height_step_A: float = 0.1, pixel_size_A: float = 0.125,
              size_px=(128, 128), closest_height_A: float | None = None, center_xy_A=None,
              f0_Hz: float = 30300.0, k_N_per_m: float = 1800.0, amplitude_A: float = 1.0) -> AFMStack:
    """An empty (zero-data) stack describing a scan over ``atoms``, to pass to :func:`simulate`.

    Parameters
    ----------
    atoms : ase.Atoms
        Geometry (Å).
    n_heights, height_step_A : int, float
        Number of slices and spacing (Å); index 0 is the farthest.
    pixel_size_A : float
        Lateral pixel size (Å).
    size_px : (ny, nx)
        Image size in pixels (the order of ``data.shape[1:]``).
    closest_height_A : float, optional
        Height of the closest slice (probe-particle z at oscillation centre). Default: the
        topmost adsorbate atom (non-substrate) + ``DEFAULT_CLOSEST_GAP_A`` (2.5 Å).
    center_xy_A : (x, y), optional
        Centre of the window. Default: centre of the adsorbate's bounding box.
    f0_Hz, k_N_per_m, amplitude_A : float
        Cantilever resonance, stiffness and zero-to-peak amplitude.
    """
    pos, numbers, _, _ = atoms_arrays(atoms)
    n_heights = int(n_heights)
    if n_heights < 1:
        raise ValueError(f"n_heights must be at least 1, got {n_heights}")
    if not (np.isfinite(height_step_A) and height_step_A > 0):
        raise ValueError(f"height_step_A must be positive, got {height_step_A!r}")
    ny, nx = (int(v) for v in np.broadcast_to(np.asarray(size_px), (2,)))
    if ny < 1 or nx < 1:
        raise ValueError(f"size_px must be positive (ny, nx), got {size_px!r}")
    ads = ~np.isin(numbers, SUBSTRATE_NUMBERS)
    sel = ads if ads.any() else np.ones_like(ads)
    if center_xy_A is None:
        center = (pos[sel, :2].min(axis=0) + pos[sel, :2].max(axis=0)) / 2
    else:
        center = np.asarray(center_xy_A, dtype=float).reshape(2)
    if closest_height_A is None:
        closest_height_A = float(pos[sel, 2].max()) + DEFAULT_CLOSEST_GAP_A
    origin = center - np.array([(nx - 1), (ny - 1)]) * pixel_size_A / 2
    heights = closest_height_A + height_step_A * np.arange(n_heights)[::-1]
    return _scan_template(heights, (ny, nx), pixel_size_A, origin, f0_Hz, k_N_per_m, amplitude_A,
                          source="scan template (scan_like)")


def _scan_template(heights, shape_yx, pixel_size_A, origin, f0_Hz, k_N_per_m, amplitude_A,
                   **metadata) -> AFMStack:
    """An all-zero stack that only carries a scan (absolute heights, Å) for ``simulate``."""
    return AFMStack(
        np.zeros((len(heights), *shape_yx), dtype=np.float32),
        heights,
        pixel_size_A,
        origin,
        f0_Hz=f0_Hz,
        k_N_per_m=k_N_per_m,
        amplitude_A=amplitude_A,
        metadata={**metadata, "height_frame": HEIGHT_FRAME_ABSOLUTE},
    )


def scan_from_ppafm_info(atoms, pixel_size_A: float = 0.125, height_step_A: float = 0.1,
                         f0_Hz: float = 30300.0, k_N_per_m: float = 1800.0) -> AFMStack:
    """Scan template from the ppafm comment of a geometry (``atoms.info['ppafm_scan']``).

    ppafm's window ``[[x0, y0, z0], [x1, y1, z1]]`` holds the anchor's pixel centres
    (``linspace``, both ends included) and its z range; ``Amplitude`` is ppafm's
    peak-to-peak amplitude (``df_steps · dz``), so the stack's ``amplitude_A`` is half of
    it and it has ``(z1 − z0 − Amplitude) / dz + 1`` slices. The tip offset ``tip R0``
    moves the probe particle (our pixel frame) away from the anchor.
    """
    info = getattr(atoms, "info", {}).get("ppafm_scan")
    if not info or "scan_window_A" not in info:
        raise ValueError(
            "the geometry has no ppafm scan parameters (atoms.info['ppafm_scan'] with "
            "'scan_window_A'); read a ppafm XYZ with napari_afm_style.io.read_atoms"
        )
    (x0, y0, z0), (x1, y1, z1) = info["scan_window_A"]
    amp_pp = float(info.get("amplitude_A", 2.0))
    tip = tip_from_ppafm_info(atoms)
    nx = int(round((x1 - x0) / pixel_size_A)) + 1
    ny = int(round((y1 - y0) / pixel_size_A)) + 1
    nz = int(round((z1 - z0) / height_step_A))
    df_steps = int(round(amp_pp / height_step_A))
    n_heights = nz - df_steps + 1
    if n_heights < 1 or nx < 1 or ny < 1:
        raise ValueError(f"ppafm scan parameters give an empty scan: {info}")
    amp = df_steps * height_step_A / 2
    top = z1 - amp - tip.probe_depth_A
    heights = top - height_step_A * np.arange(n_heights)
    origin = (x0 + tip.r0_A[0], y0 + tip.r0_A[1])
    return _scan_template(heights, (ny, nx), pixel_size_A, origin, f0_Hz, k_N_per_m, amp,
                          source="scan template (ppafm XYZ comment)", ppafm_scan=dict(info), tip=tip.to_dict())


def tip_from_ppafm_info(atoms) -> TipParameters:
    """CO tip with the ``tip R0`` and ``kxy`` of a ppafm XYZ comment (``kxy`` is ppafm's
    internal lateral stiffness, −k/16.02 eV/Å² per N/m; defaults where absent)."""
    info = getattr(atoms, "info", {}).get("ppafm_scan") or {}
    kw = {}
    if "tipR0_A" in info and len(info["tipR0_A"]) == 3:
        kw["r0_A"] = tuple(info["tipR0_A"])
    if "kxy" in info and float(info["kxy"]) < 0:
        kw["k_xy_N_per_m"] = -float(info["kxy"]) * EVA2_PER_N_PER_M
    return TipParameters(**kw)
