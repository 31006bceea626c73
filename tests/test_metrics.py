"""Style-gap metrics: FID, MMD, spectrum distance, and the self-supervised feature net."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_afm_style import AFMStack
from napari_afm_style import metrics
from napari_afm_style.metrics import (
    canonical_arrays,
    fid,
    frechet_distance,
    mmd,
    radial_power_spectrum,
    spectrum_distance,
)
from napari_afm_style.models import feature_net as fnet
from napari_afm_style.training import feature_net as fnet_training

torch.set_num_threads(1)


def _smooth_set(seed, n=12, c=10, size=48, sigma=2.0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=(n, c, size, size)), (0, 0, sigma, sigma)).astype(np.float32)


def _with_stripes(x, amplitude, seed=0):
    rng = np.random.default_rng(seed)
    # scan-line jumps: a random offset per row, the same in every column
    rows = amplitude * rng.normal(size=x.shape[:-1])[..., None]
    return (x / x.std(axis=(-2, -1), keepdims=True) + rows).astype(np.float32)


def _mean_features(arrays):
    # a simple deterministic feature map for FID tests: per-slice mean |gradient| and std
    out = []
    for a in arrays:
        gy, gx = np.gradient(a, axis=(1, 2))
        out.append(np.concatenate([np.abs(gy).mean((1, 2)), np.abs(gx).mean((1, 2))]))
    return np.array(out)


# -- spectrum --------------------------------------------------------------------------------

def test_radial_spectrum_of_white_noise_is_flat_and_unit():
    x = np.random.default_rng(0).normal(size=(64, 64, 64))
    k, p = radial_power_spectrum(x, 0.125, n_bins=16)
    assert k.shape == (16,) and p.shape == (64, 16)
    assert k[-1] < 4.0 + 1e-9 and np.all(np.diff(k) > 0)
    # window-normalised: white noise of variance 1 has power ≈ 1 in every bin
    assert np.allclose(p.mean(0), 1.0, atol=0.1)


def test_spectrum_distance_zero_for_identical_and_grows_with_noise():
    a = _smooth_set(0)
    assert spectrum_distance(a, a) == 0.0
    rng = np.random.default_rng(1)
    d = [spectrum_distance(a, a + s * rng.normal(size=a.shape).astype(np.float32)) for s in (0.02, 0.2)]
    assert 0 < d[0] < d[1]
    # an independent draw of the same process is much closer than the noisy version
    assert spectrum_distance(a, _smooth_set(5)) < d[1]


def test_spectrum_distance_accepts_stacks_of_any_grid():
    a = _smooth_set(2, n=3, size=48)
    stacks = [AFMStack(x, 5.0 + 0.1 * np.arange(9, -1, -1), 0.125, (0, 0)) for x in a]
    assert spectrum_distance(stacks, a) == pytest.approx(0.0, abs=1e-9)
    coarse = [AFMStack(x[:, ::2, ::2], 5.0 + 0.1 * np.arange(9, -1, -1), 0.25, (0, 0)) for x in a]
    assert np.isfinite(spectrum_distance(coarse, stacks))
    with pytest.raises(ValueError, match="heights"):
        spectrum_distance(a, a[:, :5])


# -- MMD -------------------------------------------------------------------------------------

def test_mmd_of_a_set_with_itself_is_about_zero_and_grows_with_shift():
    a = _smooth_set(3, n=24)
    m = len(a)
    self_mmd = mmd(a, a)
    # the unbiased estimate on the SAME samples is −2(1 − mean off-diagonal k)/m: tiny, ≤ 0
    assert -2.0 / m <= self_mmd <= 1e-12
    # independent samples of the same process: close to 0
    assert abs(mmd(a, _smooth_set(4, n=24))) < 0.1
    shifted = [mmd(a, _with_stripes(_smooth_set(4, n=24), amp, seed=9)) for amp in (0.05, 0.3, 1.0)]
    assert shifted[0] < shifted[1] < shifted[2]
    assert shifted[2] > 0.3


def test_the_one_mmd_estimator_matches_the_direct_sum():
    from napari_afm_style._mmd import gaussian_mmd2, median_bandwidth
    from napari_afm_style.order import mmd2_unbiased

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(1.0, 1.0, size=(4, 3))

    def k(u, v):
        return np.exp(-np.sum((u - v) ** 2) / (2 * 1.5 ** 2))

    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / 12
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / 20
    assert gaussian_mmd2(x, y, 1.5) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert mmd2_unbiased(x, y, bandwidth=1.5)[0] == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    # the order statistics' default bandwidth is the one median heuristic
    assert mmd2_unbiased(x, y)[1] == median_bandwidth(np.vstack([x, y]))
    with pytest.raises(ValueError, match="at least 2 points"):
        mmd2_unbiased(x[:1], y)


# -- FID -------------------------------------------------------------------------------------

def test_frechet_distance_of_known_gaussians():
    # 1D: (0 − 1)² + 1 + 4 − 2·√(1·4) = 2
    assert frechet_distance([0.0], [[1.0]], [1.0], [[4.0]]) == pytest.approx(2.0)
    cov = np.diag([1.0, 2.0, 3.0])
    assert frechet_distance(np.zeros(3), cov, np.zeros(3), cov) == pytest.approx(0.0, abs=1e-9)


def test_fid_with_a_given_feature_function():
    a = _smooth_set(6, n=16)
    assert fid(a, a, features=_mean_features) == pytest.approx(0.0, abs=1e-8)
    near = fid(a, _with_stripes(_smooth_set(7, n=16), 0.05), features=_mean_features)
    far = fid(a, _with_stripes(_smooth_set(7, n=16), 1.0), features=_mean_features)
    assert 0 < near < far


def test_fid_without_feature_net_raises_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(fnet, "default_feature_net_path", lambda: tmp_path / "absent.pt")
    a = _smooth_set(0, n=3)
    with pytest.raises(fnet.FeatureNetNotAvailable, match="feature_net"):
        fid(a, a)
    with pytest.raises(fnet.FeatureNetNotAvailable):
        fid(a, a, model=tmp_path / "missing.pt")


def test_tiny_feature_net_trains_saves_loads_and_gives_deterministic_fid(tmp_path):
    sim = list(_smooth_set(10, n=6, size=64))
    exp = list(_with_stripes(_smooth_set(11, n=6, size=64), 0.5))
    net = fnet_training.train_feature_net(sim, exp, steps=6, batch_size=8, seed=0, progress=False,
                                 config=fnet.FeatureNetConfig(widths=(8, 8, 8, 8), n_features=16))
    acc = net.info["heldout_pretext_accuracy"]
    assert set(acc) == {"sim", "exp"} and all(0.0 <= v <= 1.0 for v in acc.values())
    path = fnet.save_feature_net(net, tmp_path / "fn.pt")
    assert path.stat().st_size < 2e6
    assert "pretext" in path.with_suffix(".md").read_text()
    f = metrics.feature_matrix(sim, "net", model=path)
    assert f.shape == (6, 16)  # one 64 × 64 tile per 64-px stack
    assert metrics.feature_matrix(_smooth_set(1, n=2, size=128), "net", model=path).shape == (8, 16)
    d1 = fid(sim, exp, model=path)
    d2 = fid(sim, exp, model=fnet.load_feature_net(path))
    assert d1 == d2 and d1 >= 0
    assert fid(sim, sim, model=path) == pytest.approx(0.0, abs=1e-6)
    # MMD can use the same features
    assert np.isfinite(mmd(sim, exp, features="net", model=path))


def test_pretext_labels_match_the_transformations():
    rng = np.random.default_rng(0)
    crops = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    x, y = fnet_training.pretext_batch(crops, rng)
    for c, xi, yi in zip(crops, x, y):
        k, rev = int(yi) % 4, int(yi) // 4
        expect = torch.rot90(torch.flip(c, (0,)) if rev else c, k, (1, 2))
        assert torch.equal(xi, expect)


def test_metric_inputs_are_validated():
    with pytest.raises(ValueError, match="empty"):
        canonical_arrays([])
    with pytest.raises(ValueError, match="N, n_heights"):
        mmd(np.zeros((10, 8, 8)), np.zeros((10, 8, 8)))
    bad = np.zeros((2, 3, 8, 8), np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        spectrum_distance(bad, bad)
