"""Structure-discovery inference: network shapes, peak extraction, frames, metrics."""

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_afm_style import AFMStack
from napari_afm_style.dataset import Sample, prepare_sample, render_targets
from napari_afm_style.models.predictor import AtomPredictor, PredictorConfig
from napari_afm_style.predict import (
    MAX_REFINE_GAIN,
    PredictionMaps,
    _tile_bounds,
    extract_atoms,
    find_peaks,
    list_models,
    load_model,
    match_atoms,
    predict,
    predict_maps,
    save_weights,
    write_inference_calibration,
)

torch.set_num_threads(1)
CFG = PredictorConfig()
TINY = PredictorConfig(base_channels=4, depth=2)


def _separated_atoms(rng, n, size_px, min_dist_A, z_range=(-5.5, -2.0), pixel=0.125):
    pts = []
    while len(pts) < n:
        c = rng.uniform(6, size_px - 6, 2)
        if all(np.hypot(*(c - p[:2])) * pixel > min_dist_A for p in pts):
            pts.append([c[0], c[1], rng.uniform(*z_range)])
    return np.array(pts)


def _maps(numbers, atoms_px, shape, cfg=CFG, amplitudes=None, origin=(0.0, 0.0), ref_z=0.0):
    """Prediction maps from rendered targets (optionally scaled per atom)."""
    if amplitudes is None:
        m = render_targets(numbers, atoms_px, shape, cfg)
    else:
        m = np.zeros((cfg.n_elements, cfg.n_zbins) + tuple(shape), np.float32)
        for z, a, amp in zip(numbers, atoms_px, amplitudes):
            np.maximum(m, amp * render_targets([z], a[None], shape, cfg), out=m)
    return PredictionMaps(m, cfg.elements, cfg.z_centres_A, cfg.pixel_size_A, np.array(origin, float),
                          ref_z, cfg.min_separation_A, 0.5, {"source": "test"})


def _random_net_file(tmp_path, cfg=TINY, seed=0):
    """A randomly initialised net whose output is not all-empty (head bias 0)."""
    torch.manual_seed(seed)
    net = AtomPredictor(cfg)
    torch.nn.init.normal_(net.head.weight, std=1.0)
    torch.nn.init.zeros_(net.head.bias)
    # calibrate the batch-norm statistics so that features (and peaks) have unit scale
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        net.train()(torch.randn(4, cfg.n_heights, 64, 64))
    return save_weights(net, cfg, tmp_path / "random.pt", default_threshold=0.6)


# -- network ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(100, 130), (37, 50), (64, 64)])
def test_output_shape_any_size(shape):
    net = AtomPredictor(TINY).eval()
    with torch.no_grad():
        y = net(torch.randn(2, 10, *shape))
    assert y.shape == (2, 2, TINY.n_zbins, *shape)
    assert torch.isfinite(y).all()


def test_config_sizes_and_more_elements():
    cfg = PredictorConfig(elements=("O", "H", "C"), base_channels=4, depth=1, z_min_A=-4.0, z_max_A=-2.0,
                          z_step_A=0.5)
    assert cfg.n_zbins == 5 and cfg.out_channels == 15
    assert np.allclose(cfg.z_centres_A, [-4, -3.5, -3, -2.5, -2])
    assert PredictorConfig.from_dict(json.loads(cfg.to_json())) == cfg
    with torch.no_grad():
        assert AtomPredictor(cfg)(torch.zeros(1, 10, 33, 40)).shape == (1, 3, 5, 33, 40)
    with pytest.raises(ValueError, match="n_heights|shape"):
        AtomPredictor(cfg)(torch.zeros(1, 7, 32, 32))


def test_untrained_net_predicts_almost_nothing():
    # the head starts at a 1 % prior: an untrained model must not invent atoms
    net = AtomPredictor(TINY).eval()
    with torch.no_grad():
        p = torch.sigmoid(net(torch.randn(1, 10, 48, 48)))
    assert float(p.max()) < 0.05


# -- peaks --------------------------------------------------------------------------------------

def test_extraction_recovers_known_atoms_subvoxel():
    rng = np.random.default_rng(3)
    o = _separated_atoms(rng, 10, 120, 2.6)
    h = o + [8.0, 0.0, 0.3]  # 1 Å away in x from each O, slightly higher
    numbers = np.array([8] * len(o) + [1] * len(h))
    atoms_px = np.concatenate([o, h])
    pm = _maps(numbers, atoms_px, (128, 128), origin=(2.0, -3.0), ref_z=15.0)
    atoms = pm.atoms(0.5)
    truth = atoms_px.copy()
    truth[:, :2] = truth[:, :2] * 0.125 + [2.0, -3.0]
    truth[:, 2] += 15.0
    for el, z in (("O", 8), ("H", 1)):
        res = match_atoms(atoms, truth[numbers == z], lateral_tol_A=0.2, height_tol_A=0.2, element=el)
        assert res["n_matched"] == res["n_true"] == res["n_pred"]
        assert res["rmse_A"] < 0.05
    assert np.all(atoms.arrays["confidence"] > 0.99)
    assert atoms.info["threshold"] == 0.5 and atoms.info["source"] == "test"


def test_find_peaks_gaussian_offgrid_exact():
    z, y, x = np.mgrid[0:9, 0:30, 0:30].astype(float)
    centre = (4.3, 12.6, 17.2)
    v = 0.8 * np.exp(-0.5 * (((z - centre[0]) / 1.1) ** 2 + ((y - centre[1]) / 2.0) ** 2
                             + ((x - centre[2]) / 2.0) ** 2))
    pk = find_peaks(v, (0.25, 0.125, 0.125), (1.0, 1.0))
    assert len(pk) == 1
    assert np.allclose(pk[0, :3], centre, atol=1e-3)
    assert pk[0, 3] == pytest.approx(0.8, abs=1e-3)


def test_confidence_and_threshold():
    rng = np.random.default_rng(5)
    atoms_px = _separated_atoms(rng, 6, 120, 3.0)
    amps = np.array([0.25, 0.4, 0.55, 0.7, 0.85, 1.0])
    pm = _maps(np.full(6, 8), atoms_px, (128, 128), amplitudes=amps)
    a = pm.atoms(0.5)
    assert len(a) == 4
    assert np.allclose(np.sort(a.arrays["confidence"]), [0.55, 0.7, 0.85, 1.0], atol=0.01)
    assert len(pm.atoms(0.3)) == 5
    assert len(pm.atoms(0.9)) == 1
    assert len(pm.atoms(0.01)) == 6  # below the candidate floor: a fresh search
    with pytest.raises(ValueError, match="threshold"):
        pm.atoms(1.5)
    # re-thresholding reuses the peak search
    n_cached = len(pm._peaks)
    extract_atoms(pm, 0.45)
    assert len(pm._peaks) == n_cached


def test_default_threshold_used():
    pm = _maps([8, 8], np.array([[30, 30, -3.0], [90, 90, -3.0]]), (128, 128), amplitudes=[0.45, 0.7])
    assert len(pm.atoms()) == 1  # default 0.5
    pm.default_threshold = 0.4
    assert len(pm.atoms()) == 2


def test_close_peak_suppression():
    # two O 1.0 Å apart (< 1.8 Å): only the stronger survives
    pm = _maps([8, 8], np.array([[60, 60, -3.0], [68, 60, -3.0]]), (128, 128), amplitudes=[0.9, 0.7])
    a = pm.atoms(0.3)
    assert len(a) == 1
    assert a.arrays["confidence"][0] == pytest.approx(0.9, abs=0.01)
    assert a.positions[0, 0] == pytest.approx(60 * 0.125, abs=0.05)
    # O stacked vertically 2.5 Å apart (bilayer-like) are both kept: the z bins separate them
    pm = _maps([8, 8], np.array([[60, 60, -2.5], [61, 60, -5.0]]), (128, 128))
    a = pm.atoms(0.5)
    assert len(a) == 2
    assert np.allclose(np.sort(a.positions[:, 2]), [-5.0, -2.5], atol=0.05)
    # two H 1.5 Å apart (one molecule) are both kept
    pm = _maps([1, 1], np.array([[60, 60, -3.0], [72, 60, -3.0]]), (128, 128))
    assert len(pm.atoms(0.5)) == 2


def test_targets_round_trip_absolute_frame():
    """Atoms → shard sample → canonical targets → extraction → the same atoms."""
    rng = np.random.default_rng(11)
    closest = 14.3
    origin = np.array([-5.0, 3.0])
    o_px = _separated_atoms(rng, 8, 128, 2.6, z_range=(-5.0, -2.5))
    pos = np.column_stack([origin + o_px[:, :2] * 0.125, closest + o_px[:, 2]])
    deep = np.array([[origin[0] + 5, origin[1] + 5, closest - 8.0]])  # invisible, dropped
    gold = np.array([[origin[0] + 8, origin[1] + 8, closest - 3.0]])  # substrate, not predicted
    sample = Sample(df=np.random.default_rng(0).normal(size=(10, 128, 128)).astype(np.float32),
                    heights_A=closest + 0.1 * np.arange(9, -1, -1), pixel_size_A=0.125, origin_A=origin,
                    numbers=np.array([8] * len(pos) + [8, 79]), positions_A=np.concatenate([pos, deep, gold]))
    prep = prepare_sample(sample, CFG)
    assert len(prep.numbers) == len(pos)
    maps = render_targets(prep.numbers, prep.atoms_px, prep.data.shape[-2:], CFG)
    pm = PredictionMaps(maps, CFG.elements, CFG.z_centres_A, 0.125, origin, closest, CFG.min_separation_A)
    res = match_atoms(pm.atoms(0.5), pos, 0.1, 0.1)
    assert res["f1"] == 1.0 and res["rmse_A"] < 0.02


# -- inference ------------------------------------------------------------------------------------

def test_predict_arbitrary_stack_in_stack_frame(tmp_path):
    weights = _random_net_file(tmp_path)
    rng = np.random.default_rng(2)
    heights = 3.0 + 0.12 * np.arange(6, -1, -1)  # 7 heights, 0.72 Å span, relative frame
    stack = AFMStack(rng.normal(size=(7, 90, 110)).astype(np.float32), heights, 0.1, (4.0, -2.5),
                     metadata={"height_frame": "relative: 0 = closest slice + 3 Å"})
    atoms = predict(stack, model=weights, threshold=0.7)
    assert len(atoms) > 0
    assert len(atoms.arrays["confidence"]) == len(atoms)
    assert np.all(atoms.arrays["confidence"] >= 0.7)
    x, y, z = atoms.positions.T
    assert np.all((x >= 4.0 - 0.1) & (x <= 4.0 + 109 * 0.1 + 0.1))
    assert np.all((y >= -2.5 - 0.1) & (y <= -2.5 + 89 * 0.1 + 0.1))
    lo, hi = TINY.visible_z_range_A
    assert np.all((z >= heights[-1] + lo) & (z <= heights[-1] + hi))
    info = atoms.info
    json.dumps(info)
    assert info["height_frame"].startswith("relative")
    assert info["reference_z_A"] == pytest.approx(heights[-1])
    assert info["preprocessing"]["lateral_resampled"] is True
    assert info["preprocessing"]["n_heights_clamped"] > 0 and "warning" in info["preprocessing"]
    assert info["threshold"] == 0.7 and info["predictor_model"] == "random"
    # every atom sits within half a voxel of a local-maximum voxel ≥ threshold / max gain:
    # the conversion voxel → stack frame is undone here independently
    maps = predict_maps(stack, weights)
    for a in atoms:
        vol = maps.maps[maps.elements.index(a.symbol)]
        peaks = np.argwhere((vol >= ndimage.maximum_filter(vol, size=3, mode="nearest")) & (vol >= 0.7 / MAX_REFINE_GAIN))
        frac = np.array([(a.position[2] - heights[-1] - TINY.z_min_A) / TINY.z_step_A,
                         (a.position[1] + 2.5) / 0.125, (a.position[0] - 4.0) / 0.125])
        assert np.abs(peaks - frac).max(axis=1).min() <= 0.5 + 1e-6
    # the model's default threshold (stored in the weights) is used when none is given
    assert predict(stack, model=weights).info["threshold"] == 0.6


def test_predict_refuses_nan(tmp_path):
    weights = _random_net_file(tmp_path)
    data = np.zeros((10, 64, 64), np.float32)
    data[3, 10, 10] = np.nan
    stack = AFMStack(data, 10 + 0.1 * np.arange(9, -1, -1), 0.125, (0, 0))
    with pytest.raises(ValueError, match="NaN"):
        predict(stack, model=weights)


def test_tiled_prediction_covers_large_images(tmp_path):
    weights = _random_net_file(tmp_path)
    rng = np.random.default_rng(1)
    stack = AFMStack(rng.normal(size=(10, 210, 250)).astype(np.float32), 10 + 0.1 * np.arange(9, -1, -1),
                     0.125, (0, 0))
    maps = predict_maps(stack, weights, tile_px=128, overlap_px=32, max_untiled_px=192)
    assert maps.maps.shape == (2, TINY.n_zbins, 210, 250)
    assert maps.info["n_tiles"] == 2 * 3 and len(maps.info["tiles_x"]) == 3
    assert np.all(np.isfinite(maps.maps)) and maps.maps.min() >= 0 and maps.maps.max() <= 1
    for n in (250, 300, 129, 64):
        bounds = _tile_bounds(n, 128, 32)
        kept = np.concatenate([np.arange(k0, k1) for _, _, k0, k1 in bounds])
        assert np.array_equal(kept, np.arange(n))  # an exact partition
        assert all(a <= k0 and k1 <= b for a, b, k0, k1 in bounds)


def test_unknown_model_lists_available():
    with pytest.raises(ValueError, match="available"):
        load_model("no-such-model")
    assert isinstance(list_models(), list)
    with pytest.raises(FileNotFoundError):
        load_model("/nonexistent/dir/weights.pt")


def test_weights_small_cached_and_faithful(tmp_path):
    torch.manual_seed(0)
    net = AtomPredictor(CFG).eval()
    torch.nn.init.normal_(net.head.weight, std=0.1)
    path = save_weights(net, CFG, tmp_path / "predictor_x.pt")
    assert path.stat().st_size < 20 * 2**20
    m1 = load_model(path)
    assert load_model(str(path)) is m1  # cached
    x = torch.randn(1, 10, 64, 64)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(net(x)), torch.sigmoid(m1.net(x)), atol=2e-3)
    bad = tmp_path / "bad.pt"
    torch.save({"something": 1}, bad)
    with pytest.raises(ValueError, match="not a napari-afm-style predictor"):
        load_model(bad)


# -- metrics ----------------------------------------------------------------------------------------

def test_match_atoms():
    true = np.array([[0, 0, 0], [3, 0, 0], [0, 3, 1.0]], float)
    assert match_atoms(true, true)["f1"] == 1.0
    shifted = true + [0.3, 0, 0]
    r = match_atoms(shifted, true)
    assert r["n_matched"] == 3 and r["rmse_A"] == pytest.approx(0.3)
    r = match_atoms(true + [0.6, 0, 0], true)
    assert r["n_matched"] == 0 and r["precision"] == 0 and r["recall"] == 0
    r = match_atoms(true + [0, 0, 0.6], true)  # too far in height
    assert r["n_matched"] == 0
    r = match_atoms(true[:2], true)
    assert r["precision"] == 1.0 and r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(0.8)
    # optimal, not greedy: p0 is closest to t0, but only p0–t1 / p1–t0 matches both
    p = np.array([[0.2, 0, 0], [-0.35, 0, 0]])
    t = np.array([[0.0, 0, 0], [0.6, 0, 0]])
    assert match_atoms(p, t)["n_matched"] == 2
    empty = match_atoms(np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty["f1"] == 1.0 and np.isnan(empty["rmse_A"])
    assert match_atoms(np.zeros((0, 3)), true)["recall"] == 0.0


def test_match_atoms_by_element():
    from ase import Atoms

    a = Atoms("OH", positions=[[0, 0, 0], [1, 0, 0]])
    b = Atoms("OH", positions=[[0.1, 0, 0], [3, 0, 0]])
    assert match_atoms(a, b, element="O")["f1"] == 1.0
    assert match_atoms(a, b, element="H")["f1"] == 0.0


# -- CLI --------------------------------------------------------------------------------------------

def test_cli_predict_writes_extxyz(tmp_path, capsys):
    from napari_afm_style.cli import main
    from napari_afm_style.io import read_atoms, write_stack

    weights = _random_net_file(tmp_path)
    rng = np.random.default_rng(0)
    stack = AFMStack(rng.normal(size=(10, 64, 72)).astype(np.float32), 9 + 0.1 * np.arange(9, -1, -1),
                     0.125, (1, 1))
    src = write_stack(stack, tmp_path / "s.npz")
    out = tmp_path / "pred.xyz"
    assert main(["predict", str(src), "-o", str(out), "--model", str(weights), "--threshold", "0.7"]) == 0
    atoms = read_atoms(out)
    direct = predict(stack, weights, 0.7)
    assert len(atoms) == len(direct) > 0
    assert np.allclose(atoms.arrays["confidence"], direct.arrays["confidence"], atol=1e-5)
    assert "wrote" in capsys.readouterr().out
    assert main(["predict", str(src), "-o", str(out), "--model", "no-such-model"]) == 1
    assert "available" in capsys.readouterr().err


def test_match_atoms_returns_the_pairs():
    true = np.array([[0.0, 0, 0], [3.0, 0, 0], [6.0, 0, 0]])
    pred = np.array([[6.2, 0, 0], [0.1, 0, 0.1], [20.0, 0, 0]])
    r = match_atoms(pred, true, return_pairs=True)
    assert sorted(map(tuple, r["pairs"].tolist())) == [(0, 2), (1, 0)]
    assert r["n_matched"] == 2 and "pairs" not in match_atoms(pred, true)


def test_site_categories():
    from napari_afm_style.evaluation import site_categories

    pos = np.array([[5.0, 5.0, -3.0],   # open
                    [5.2, 5.0, -5.0],   # under the first one
                    [0.4, 5.0, -3.0],   # at the edge
                    [8.0, 8.0, -4.0]])  # open
    c = site_categories(pos, (10.0, 10.0))
    assert c["open"].tolist() == [True, False, False, True]
    assert c["covered"].tolist() == [False, True, False, False]
    assert c["edge"].tolist() == [False, False, True, False]


def test_windowed_match_scores_only_the_depth_window():
    from napari_afm_style.evaluation import windowed_match

    true = np.array([[0.0, 0, -4.0],    # in the window, found
                     [3.0, 0, -5.9],    # in the window, found by a prediction just below it
                     [6.0, 0, -6.3],    # below the window, found: neither counted nor penalised
                     [9.0, 0, -4.5]])   # in the window, missed
    pred = np.array([[0.1, 0, -4.1], [3.0, 0, -6.2], [6.0, 0, -6.0], [12.0, 0, -4.0], [15.0, 0, -7.0]])
    r = windowed_match(pred, true, z_min_A=-6.125)
    # TP: atoms 0 and 1; FN: atom 3; FP: the prediction at x = 12 (the one at -7 is outside)
    assert (r["n_matched"], r["n_true"], r["n_pred"]) == (2, 3, 3)
    assert r["recall"] == pytest.approx(2 / 3) and r["precision"] == pytest.approx(2 / 3)
    assert sorted(r["pairs"][:, 1].tolist()) == [0, 1]
    assert r["false_positive"].tolist() == [False, False, False, True, False]


def test_breakdown_counts_wrong_atoms_stacked_under_true_ones():
    from napari_afm_style.evaluation import _Breakdown, windowed_match

    true = np.array([[2.0, 2.0, -3.0], [6.0, 2.0, -3.2]])
    pred = np.array([[2.1, 2.0, -3.1],   # right
                     [2.2, 2.1, -5.7],   # wrong, 2.7 Å under the first true atom: a stacked ghost
                     [6.0, 2.0, -4.0],   # wrong, only 0.8 Å under the second: a height error
                     [9.0, 9.0, -3.0]])  # wrong, nothing near
    tally = _Breakdown(lateral_tol_A=0.5)
    tally.add("theory", windowed_match(pred, true, z_min_A=-6.125), true, pred, -3.0, (16.0, 16.0))
    res = tally.result()
    assert res["false"] == {"n_false": 3, "n_under_a_true_atom": 1}
    assert res["missed"] == {"n_missed": 1, "n_with_prediction_above_or_below": 1}


@pytest.mark.parametrize("name", ["pure", "handcrafted", "style", "hybrid"])
def test_every_shipped_model_has_a_card_and_finds_water(name):
    """The four regimes ship as weights + card, and each finds O atoms under the bundled
    simulated sample at its true positions."""
    from napari_afm_style._sample_data import SIM_GEOMETRY, SIM_STACK, data_path
    from napari_afm_style.io import read_atoms, read_stack
    from napari_afm_style.predict import _models_dir

    if name not in list_models():
        pytest.skip(f"model {name!r} not shipped")
    card = (_models_dir() / f"predictor_{name}.md").read_text()
    assert "command" in card and "seed" in card and "Held-out" in card
    stack = read_stack(data_path(SIM_STACK))
    atoms = predict(stack, model=name)
    truth = read_atoms(data_path(SIM_GEOMETRY))
    o_true = truth.positions[truth.numbers == 8]
    o_true = o_true[o_true[:, 2] > stack.heights_A[-1] - 6.0]
    res = match_atoms(atoms, o_true, element="O")
    assert res["n_matched"] >= 0.5 * len(o_true)


@pytest.mark.parametrize("n_views", [4, 8])
def test_averaged_views_make_prediction_mirror_equivariant(tmp_path, n_views):
    """Averaging the mirrored/rotated views makes the maps of a mirrored stack exactly the
    mirrored maps; a single view (an untrained net has no symmetry) does not."""
    weights = _random_net_file(tmp_path)
    rng = np.random.default_rng(3)
    data = rng.normal(size=(10, 64, 64)).astype(np.float32)
    heights = 10 + 0.1 * np.arange(9, -1, -1)
    plain = AFMStack(data, heights, 0.125, (0, 0))
    mirrored = AFMStack(np.ascontiguousarray(data[..., ::-1]), heights, 0.125, (0, 0))
    a = predict_maps(plain, weights, test_time_augmentation=n_views)
    b = predict_maps(mirrored, weights, test_time_augmentation=n_views)
    np.testing.assert_allclose(b.maps, a.maps[..., ::-1], atol=1e-5)
    assert a.info["test_time_augmentation_views"] == n_views
    one_a = predict_maps(plain, weights, test_time_augmentation=1).maps
    one_b = predict_maps(mirrored, weights, test_time_augmentation=1).maps
    assert np.abs(one_b - one_a[..., ::-1]).max() > 1e-3
    # the atoms mirror too (x → 63 · 0.125 − x), up to tie-breaks between equal close peaks
    atoms_a, atoms_b = a.atoms(0.8), b.atoms(0.8)
    mirrored_a = atoms_a.positions * [-1, 1, 1] + [63 * 0.125, 0, 0]
    res = match_atoms(atoms_b.positions, mirrored_a, lateral_tol_A=1e-3, height_tol_A=1e-3)
    assert len(atoms_a) > 20 and res["n_matched"] >= 0.95 * max(len(atoms_a), len(atoms_b))
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        predict_maps(plain, weights, test_time_augmentation=3)


def test_inference_calibration_is_stored_and_used(tmp_path):
    """A calibration (NumPy numbers, as calibrate_inference returns them) stored in a weights
    file sets predict's default view count and per-view threshold; bad input leaves the file."""
    weights = _random_net_file(tmp_path)
    calibration = {
        "recommended_views": np.int64(2), "n_samples": 12, "eval_z_min_A": np.float64(-6.125),
        "views": {1: {"threshold": np.float32(0.55), "f1": np.float64(0.8), "precision": 0.9, "recall": 0.7,
                      "f1_by_threshold": {0.5: 0.79}},
                  2: {"threshold": np.float32(0.75), "f1": np.float64(0.85), "precision": 0.9, "recall": 0.8}},
    }
    write_inference_calibration(weights, calibration)
    loaded = load_model(weights)
    assert loaded.test_time_augmentation == 2
    assert loaded.thresholds_by_views == {1: pytest.approx(0.55), 2: pytest.approx(0.75)}
    assert loaded.threshold_for(8) == pytest.approx(0.6)  # not calibrated: the weights' default
    stored = torch.load(weights, weights_only=True)["inference"]["calibration"]
    assert stored["views"]["2"] == {"threshold": pytest.approx(0.75), "f1": 0.85, "precision": 0.9, "recall": 0.8}
    assert stored["eval_z_min_A"] == -6.125 and type(stored["eval_z_min_A"]) is float
    stack = AFMStack(np.random.default_rng(0).normal(size=(10, 64, 64)), 10 + 0.1 * np.arange(9, -1, -1), 0.125, (0, 0))
    atoms = predict(stack, model=weights)
    assert atoms.info["threshold"] == pytest.approx(0.75) and atoms.info["test_time_augmentation_views"] == 2
    assert predict(stack, model=weights, test_time_augmentation=1).info["threshold"] == pytest.approx(0.55)

    before = weights.read_bytes()
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        write_inference_calibration(weights, calibration | {"recommended_views": 3})
    assert weights.read_bytes() == before
    checkpoint = tmp_path / "ckpt.pt"
    torch.save({"format": "something else"}, checkpoint)
    with pytest.raises(ValueError, match="not a predictor weights file"):
        write_inference_calibration(checkpoint, calibration)
