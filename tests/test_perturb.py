"""Handcrafted perturbations of Δf stacks: each does what it says, in physical units."""

import json

import numpy as np
import pytest

from napari_afm_style import AFMStack
from napari_afm_style.perturb import (
    apply_to_stack,
    background_plane,
    contrast_change,
    cutouts,
    drift,
    misregistration,
    pink_noise,
    random_cutout_boxes,
    random_perturbation,
    random_walk_shifts,
    scan_line_offsets,
    shift_positions,
    white_noise,
)

PX = 0.125


def _blobs(n=4, ny=64, nx=80, centres=((4.0, 3.0),), px=PX):
    """Δf-like stack: attractive background with sharp repulsive bumps (Hz)."""
    y, x = np.mgrid[0:ny, 0:nx] * px
    out = np.empty((n, ny, nx), np.float32)
    for k in range(n):
        img = -1.5 - 0.1 * k + 0 * x
        for cx, cy in centres:
            img = img + (1.0 + 0.2 * k) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.35**2))
        out[k] = img
    return out


def _centroid(img, px=PX):
    w = np.clip(img - np.median(img), 0, None)
    y, x = np.mgrid[0 : img.shape[0], 0 : img.shape[1]] * px
    return np.array([(w * x).sum() / w.sum(), (w * y).sum() / w.sum()])


def test_white_noise_has_the_requested_rms():
    df = _blobs()
    out = white_noise(df, np.random.default_rng(0), 0.07)
    assert out.shape == df.shape and out.dtype == np.float32
    assert np.std(out - df) == pytest.approx(0.07, rel=0.03)
    assert abs(np.mean(out - df)) < 0.005
    assert np.array_equal(out, white_noise(df, 0, 0.07))  # an int seed = default_rng(seed)
    assert np.array_equal(white_noise(df, 3, 0.07), white_noise(df, 3, 0.07))
    assert np.array_equal(white_noise(df, 3, 0.0), df)


def test_pink_noise_rms_and_spectral_exponent():
    df = np.zeros((3, 64, 64), np.float32)
    for exponent in (0.0, 1.0, 2.0):
        out = pink_noise(df, np.random.default_rng(1), 0.05, exponent)
        assert np.allclose(out.reshape(3, -1).std(axis=1), 0.05, rtol=1e-3)
        # power spectral density along the raster (time) falls as f^-exponent
        series = out.reshape(3, -1).astype(float)
        psd = np.mean(np.abs(np.fft.rfft(series, axis=1)) ** 2, axis=0)
        f = np.fft.rfftfreq(series.shape[1])
        sel = (f > 2e-3) & (f < 0.2)
        slope = np.polyfit(np.log(f[sel]), np.log(psd[sel]), 1)[0]
        assert slope == pytest.approx(-exponent, abs=0.15)
    # 1/f noise is correlated along the fast axis (x): neighbours in a row are similar
    out = pink_noise(df, 2, 0.05, 1.5)
    along_x = np.corrcoef(out[0, :, :-1].ravel(), out[0, :, 1:].ravel())[0, 1]
    assert along_x > 0.8


def test_scan_line_offsets_are_constant_along_each_line():
    df = _blobs()
    out = scan_line_offsets(df, np.random.default_rng(2), 0.1, 0.5)
    diff = out - df
    assert np.allclose(diff, diff[:, :, :1], atol=1e-6)  # constant along x (fast axis)
    jumped = np.abs(diff[:, :, 0]) > 0
    assert 0.35 < jumped.mean() < 0.65
    assert np.std(diff[:, :, 0][jumped]) == pytest.approx(0.1, rel=0.25)
    # persistent steps: the offset only changes where a line jumps, then stays
    steps = scan_line_offsets(df, np.random.default_rng(3), 0.2, 0.05, persistent=True) - df
    changes = np.abs(np.diff(steps[:, :, 0], axis=1)) > 1e-6
    assert 0 < changes.mean() < 0.15
    # along y as fast axis the columns are constant
    col = scan_line_offsets(df, 4, 0.1, 0.5, fast_axis="y") - df
    assert np.allclose(col, col[:, :1, :], atol=1e-6)


def test_background_plane_has_the_given_gradient_and_offset():
    df = np.zeros((2, 40, 50), np.float32)
    out = background_plane(df, [[0.1, -0.05], [0.02, 0.03]], [0.5, -0.2], pixel_size_A=0.2)
    y, x = np.mgrid[0:40, 0:50] * 0.2
    for k, (g, off) in enumerate((((0.1, -0.05), 0.5), ((0.02, 0.03), -0.2))):
        a = np.c_[x.ravel(), y.ravel(), np.ones(x.size)]
        coef, *_ = np.linalg.lstsq(a, out[k].ravel().astype(float), rcond=None)
        assert coef[:2] == pytest.approx(g, abs=1e-5)
        assert out[k].mean() == pytest.approx(off, abs=1e-5)  # zero-mean tilt + offset
    single = background_plane(np.zeros((8, 8)), (0.1, 0.0), 0.0, 1.0)
    assert single.shape == (8, 8) and np.allclose(np.diff(single, axis=1), 0.1)


def test_drift_shears_and_shift_positions_predicts_where_atoms_appear():
    centres = ((3.0, 2.0), (7.0, 6.0))
    ny, nx = 64, 80
    df = _blobs(2, ny, nx, centres)
    d = (0.4, 0.3)
    out = drift(df, d, PX)
    assert out.shape == df.shape and out.dtype == np.float32
    record = {"pixel_size_A": PX, "shape": [2, ny, nx], "fast_axis": "x",
              "applied": [{"name": "drift", "drift_A": list(d)}]}
    predicted = shift_positions(np.array(centres), record, origin_A=(0.0, 0.0))
    for (cx, cy), p in zip(centres, predicted):
        win = (slice(int((cy - 1.2) / PX), int((cy + 1.6) / PX)),
               slice(int((cx - 1.2) / PX), int((cx + 1.6) / PX)))
        sub = out[1][win]
        c = _centroid(sub) + [win[1].start * PX, win[0].start * PX]
        assert c == pytest.approx(p, abs=0.03)
        # the displacement grows with the acquisition time of the line (y)
        t = p[1] / ((ny - 1) * PX)
        assert np.linalg.norm(p - [cx, cy]) == pytest.approx(np.hypot(*d) * t, abs=0.02)
    assert np.array_equal(drift(df, (0, 0), PX), df)


def test_misregistration_shifts_each_slice_and_keeps_the_anchor():
    df = _blobs(5, 64, 64, ((4.0, 4.0),))
    shifts = random_walk_shifts(np.random.default_rng(5), 5, 0.2, "closest")
    assert shifts.shape == (5, 2) and np.allclose(shifts[-1], 0.0)
    out = misregistration(df, shifts, PX)
    for k in range(5):
        moved = _centroid(out[k]) - _centroid(df[k])
        assert moved == pytest.approx(shifts[k], abs=0.02)
    assert np.array_equal(out[-1], df[-1])
    far = random_walk_shifts(1, 5, 0.2, "farthest")
    assert np.allclose(far[0], 0.0)
    with pytest.raises(ValueError, match="anchor"):
        random_walk_shifts(1, 5, 0.2, "middle")


def test_cutouts_fill_with_the_local_mean_or_zero():
    df = _blobs()
    boxes = [(1, 10, 12, 20, 30), (-1, 40, 50, 45, 60)]
    out = cutouts(df, boxes, "local_mean")
    ring = np.ones((14, 22), bool)
    ring[2:-2, 2:-2] = False
    assert np.allclose(out[1, 10:20, 12:30], df[1, 8:22, 10:32][ring].mean(), atol=1e-5)
    assert np.array_equal(out[0, 10:20, 12:30], df[0, 10:20, 12:30])  # other slices intact
    for k in range(df.shape[0]):
        assert np.ptp(out[k, 40:45, 50:60]) == 0
    mask = np.ones(df.shape, bool)
    mask[1, 10:20, 12:30] = False
    mask[:, 40:45, 50:60] = False
    assert np.array_equal(out[mask], df[mask])
    zero = cutouts(df, boxes, "zero")
    assert np.all(zero[:, 40:45, 50:60] == 0)
    rb = random_cutout_boxes(np.random.default_rng(0), df.shape, 3, (1.0, 2.0), PX)
    assert len(rb) == 3
    for k, y0, x0, y1, x1 in rb:
        assert 8 <= y1 - y0 <= 16 and 8 <= x1 - x0 <= 16 and -1 <= k < df.shape[0]


def test_contrast_change_gain_and_gamma():
    df = _blobs()
    gained = contrast_change(df, gain=[1.0, 1.1, 0.9, 1.0])
    assert np.allclose(gained[1], 1.1 * df[1], rtol=1e-6)
    gam = contrast_change(df, gamma=0.7)
    for k in range(df.shape[0]):
        assert gam[k].min() == pytest.approx(df[k].min(), abs=1e-5)
        assert gam[k].max() == pytest.approx(df[k].max(), abs=1e-5)
        order = np.argsort(df[k].ravel(), kind="stable")
        assert np.all(np.diff(gam[k].ravel()[order]) >= -1e-6)  # monotonic
    assert np.mean(gam) > np.mean(df)  # gamma < 1 lifts mid-tones
    assert np.array_equal(contrast_change(df), df)
    with pytest.raises(ValueError, match="positive"):
        contrast_change(df, gain=-1.0)


def test_random_perturbation_identity_at_zero_strength_and_deterministic():
    df = _blobs()
    out, rec = random_perturbation(df, 0, strength=0.0)
    assert np.array_equal(out, df) and rec["applied"] == []
    a, ra = random_perturbation(df, 42, 1.0)
    b, rb = random_perturbation(df, np.random.default_rng(42), 1.0)
    assert np.array_equal(a, b) and ra == rb
    c, _ = random_perturbation(df, 43, 1.0)
    assert not np.array_equal(a, c)
    assert a.shape == df.shape and a.dtype == np.float32 and np.all(np.isfinite(a))
    json.dumps(ra)


def test_random_perturbation_strength_scales_the_change():
    df = _blobs()
    dev = {}
    for s in (0.3, 1.0, 2.0):
        rms = [np.sqrt(np.mean((random_perturbation(df, seed, s)[0] - df) ** 2)) for seed in range(12)]
        dev[s] = np.mean(rms)
    assert dev[0.3] < dev[1.0] < dev[2.0]
    # at strength 1 the change is of the size of real scan artifacts (tenths of a Hz)
    assert 0.02 < dev[1.0] < 1.0


def test_random_perturbation_records_lateral_shifts_for_labels():
    df = _blobs()
    names = set()
    for seed in range(30):
        _, rec = random_perturbation(df, seed, 1.0, PX)
        names |= {step["name"] for step in rec["applied"]}
        pos = np.array([[4.0, 3.0, 10.0]])
        moved = shift_positions(pos, rec)
        assert np.linalg.norm(moved[0, :2] - pos[0, :2]) < 0.5  # below the matching tolerance
        assert moved[0, 2] == 10.0
    assert {"white_noise", "drift", "misregistration", "background_plane", "scan_line_offsets",
            "pink_noise", "contrast_change"} <= names


def test_apply_to_stack_records_history_and_keeps_the_original(small_stack):
    before = small_stack.data.copy()
    out = apply_to_stack(small_stack, 7, strength=1.0)
    assert isinstance(out, AFMStack)
    assert np.array_equal(small_stack.data, before)
    assert out.shape == small_stack.shape and out.pixel_size_A == small_stack.pixel_size_A
    step = out.metadata["history"][-1]
    assert step["step"] == "perturb" and step["strength"] == 1.0
    assert step["origin_A"] == list(small_stack.origin_A)
    assert not np.array_equal(out.data, small_stack.data)


def test_bad_input_gives_clear_errors():
    df = _blobs()
    with pytest.raises(ValueError, match="shape"):
        white_noise(np.zeros(5), 0, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        white_noise(np.full((2, 4, 4), np.nan), 0, 0.1)
    with pytest.raises(ValueError, match="sigma_Hz"):
        white_noise(df, 0, -0.1)
    with pytest.raises(ValueError, match="probability"):
        scan_line_offsets(df, 0, 0.1, 1.5)
    with pytest.raises(ValueError, match="gradient_Hz_per_A"):
        background_plane(df, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="rng"):
        white_noise(df, "seed", 0.1)
    with pytest.raises(ValueError, match="strength"):
        random_perturbation(df, 0, -1.0)
