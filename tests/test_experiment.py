"""The four-regime experiment, end to end at a tiny size (real training, translation,
prediction and order statistics; small synthetic shards so that it takes seconds)."""

import csv
import json

import numpy as np
import pytest
import torch

from napari_afm_style.experiment import (
    ExperimentConfig,
    bootstrap_order_distances,
    order_on_scans,
    run_experiment,
)
from napari_afm_style.order import distribution_distances, reference_distribution, tetrahedral_order
from napari_afm_style.structures import generate_structure

from test_train_predictor import write_shards

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    from napari_afm_style._sample_data import EXP_STACK, data_path
    from napari_afm_style.io import read_stack, write_stack

    root = tmp_path_factory.mktemp("experiment")
    sim = write_shards(root / "sim", 8, seed=0)
    sim2 = write_shards(root / "sim2", 8, seed=2)
    heldout = write_shards(root / "heldout", 8, seed=1)
    exp = root / "exp"
    exp.mkdir()
    scan = read_stack(data_path(EXP_STACK))
    write_stack(scan, exp / "scan_a.npz")
    write_stack(scan.replace(data=scan.data[:, ::-1].copy()), exp / "scan_b.npz")
    from test_labelled_scans import _write_labelled
    from napari_afm_style.io import read_atoms

    labelled = root / "labelled"
    labelled.mkdir()
    sim_stack = read_stack(data_path("sample_water_sim.npz"))
    _write_labelled(labelled / "scan_0000.npz", sim_stack, read_atoms(data_path("sample_water_sim.xyz")),
                    float(sim_stack.heights_A[-1]))
    # every regime starts from the shipped `pure` weights and moves little (tiny lr), so that
    # prediction, order statistics, bootstrap and report run on real predicted structures
    cfg = ExperimentConfig(sim=[str(sim), str(sim2)], heldout=str(heldout), exp=str(exp), out=str(root / "out"),
                           epochs=1, jobs=1, bootstrap=50, progress=False, lr=1e-5, batch_size=4,
                           labelled=str(labelled), style_strength=(0.2, 0.8),
                           train_options={"init_from": "pure", "crop_px": (40, 48), "val_max_samples": 4})
    return cfg, run_experiment(cfg)


def test_every_regime_is_trained_and_reported(experiment):
    cfg, res = experiment
    out = cfg["out"]
    assert list(res["regimes"]) == ["pure", "handcrafted", "style", "hybrid"]
    with open(f"{out}/results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["regime"] for r in rows] == ["pure", "handcrafted", "style", "hybrid"]
    md = open(f"{out}/results.md").read()
    assert "| style |" in md and "order_histograms.png" in md
    assert (res["files"]["figure"]) and open(res["files"]["figure"], "rb").read(4) == b"\x89PNG"
    for regime, r in res["regimes"].items():
        ckpt = torch.load(f"{out}/runs/{regime}/last.pt", weights_only=True)
        assert ckpt["epoch"] == 1 and ckpt["train_config"]["regime"] == regime
        assert ckpt["train_config"]["seed"] == 0 and ckpt["train_config"]["epochs"] == 1
        assert r["labelled_translated"]["O"]["n_true"] == r["labelled_clean"]["O"]["n_true"] > 0
        assert len(ckpt["data"]["data"]["folders"]) == 2  # both --sim folders, read as one set
        # real structures were predicted on both scans, and the labelled sample is found
        assert r["atoms"]["n_O_per_scan"] >= 5 and r["order"]["n_samples"] > 0
        assert np.isfinite(r["order"]["wasserstein_S_g"])
        assert r["labelled_scans"]["mean_f1"] >= 0.7, regime
    # the style regimes translated forward on the fly with the shipped translator
    for regime in ("style", "hybrid"):
        fly = torch.load(f"{out}/runs/{regime}/last.pt", weights_only=True)["data"]["style_on_the_fly"]
        assert fly["strength"] == [0.2, 0.8] and fly["translators"][0]["sha256"]
    assert torch.load(f"{out}/runs/pure/last.pt", weights_only=True)["data"]["style_on_the_fly"] is None
    assert "delta_vs_handcrafted_ci95" in res["regimes"]["hybrid"]["labelled_scans"]
    assert "Labelled experiment-style scans" in md


def test_order_statistics_are_the_pooled_per_scan_values(experiment):
    cfg, res = experiment
    o = res["regimes"]["pure"]["order"]
    d = distribution_distances(o["S_k_values"], o["S_g_values"], "theory")
    assert o["n_samples"] == len(o["S_g_values"]) > 0
    assert o["wasserstein_S_g"] == pytest.approx(d["wasserstein_S_g"])
    assert res["regimes"]["pure"]["atoms"]["n_O_total"] >= 10


def test_resume_does_not_retrain(experiment):
    cfg, _ = experiment
    import os

    stamp = os.stat(f"{cfg['out']}/runs/pure/last.pt").st_mtime_ns
    res = run_experiment(ExperimentConfig(**{**cfg, "regimes": ["pure"]}))
    assert os.stat(f"{cfg['out']}/runs/pure/last.pt").st_mtime_ns == stamp
    assert list(res["regimes"]) == ["pure"]


def test_order_on_scans_keeps_scans_apart():
    ice = [generate_structure(seed, kind="bilayer") for seed in (0, 1)]
    o = order_on_scans(ice)
    for i, atoms in enumerate(ice):
        _, sk, sg = tetrahedral_order(atoms.positions[atoms.numbers == 8])
        assert np.allclose(o["S_g"][o["scan_of"] == i], sg)
    assert o["n_O"].tolist() == [int(np.sum(a.numbers == 8)) for a in ice]
    # O positions given as arrays: the same order, no H counted
    arrays = order_on_scans([a.positions[a.numbers == 8] for a in ice])
    assert np.array_equal(arrays["S_g"], o["S_g"]) and np.array_equal(arrays["scan_of"], o["scan_of"])
    assert arrays["n_H"].tolist() == [0, 0] and o["n_H"].min() > 0


def test_bootstrap_intervals():
    ref_k, ref_g = reference_distribution("theory")
    rng = np.random.default_rng(0)
    n = 20
    # scans whose centres are drawn from the theory itself: W1 small, interval covers the point value
    idx = rng.integers(0, ref_k.size, 400)
    o = {"S_k": ref_k[idx], "S_g": ref_g[idx], "scan_of": np.repeat(np.arange(n), 20)}
    shifted = {**o, "S_g": o["S_g"] + 0.2}
    b = bootstrap_order_distances(shifted, n, n_boot=200, baseline=o)
    lo, hi = b["delta_vs_pure_S_g_ci95"]
    assert 0.1 < lo <= hi < 0.25  # the shifted set is farther from theory, and the interval says so
    same = bootstrap_order_distances(o, n, n_boot=50, baseline=o)
    assert same["delta_vs_pure_S_g_ci95"] == [0.0, 0.0]
    w_lo, w_hi = same["wasserstein_S_g_ci95"]
    assert 0 <= w_lo <= distribution_distances(o["S_k"], o["S_g"])["wasserstein_S_g"] <= w_hi


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="regime"):
        ExperimentConfig(sim="a", heldout="b", exp="c", out="d", regimes=["magic"])
    with pytest.raises(ValueError, match="heldout"):
        ExperimentConfig(sim="a", exp="c", out="d")


def test_missing_inputs_fail_before_training(tmp_path):
    sim = write_shards(tmp_path / "sim", 4)
    with pytest.raises(FileNotFoundError, match="exp"):
        run_experiment(ExperimentConfig(sim=str(sim), heldout=str(sim), exp=str(tmp_path / "nope"),
                                        out=str(tmp_path / "out"), progress=False))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no scans"):
        run_experiment(ExperimentConfig(sim=str(sim), heldout=str(sim), exp=str(tmp_path / "empty"),
                                        out=str(tmp_path / "out"), progress=False))
    assert not (tmp_path / "out" / "runs").exists()


@pytest.fixture(scope="module")
def translator_choice(tmp_path_factory):
    """Two forward translators to choose between: the shipped one and a copy whose forward
    residual is three times as strong (a real, different translation)."""
    from napari_afm_style._sample_data import EXP_STACK, data_path
    from napari_afm_style.io import read_stack, write_stack
    from napari_afm_style.translate import default_translator_path

    root = tmp_path_factory.mktemp("choice")
    shipped = default_translator_path()
    payload = torch.load(shipped, map_location="cpu", weights_only=True)
    last = sorted(k for k in payload["forward"] if k.endswith("weight"))[-1]
    payload["forward"][last] = payload["forward"][last] * 3.0
    strong = root / "translator_strong.pt"
    torch.save(payload, strong)
    exp = root / "exp"
    exp.mkdir()
    scan = read_stack(data_path(EXP_STACK))
    write_stack(scan, exp / "scan_a.npz")
    write_stack(scan.replace(data=scan.data[:, :, ::-1].copy()), exp / "scan_b.npz")
    cfg = ExperimentConfig(sim=str(write_shards(root / "sim", 8, seed=0)), heldout=str(write_shards(root / "ho", 4, seed=1)),
                           exp=str(exp), out=str(root / "out"), regimes=["style"], epochs=1, jobs=1, bootstrap=20,
                           progress=False, lr=1e-5, batch_size=4, translator=[str(shipped), str(strong)],
                           choice_epochs=1, choice_scans=2,
                           train_options={"init_from": "pure", "crop_px": (40, 48), "val_max_samples": 4})
    return cfg, run_experiment(cfg)


def test_several_translators_are_chosen_between_without_labels(translator_choice):
    import hashlib
    from pathlib import Path

    cfg, res = translator_choice
    choice = res["translator_choice"]
    rows = choice["candidates"]
    assert [r["translator"] for r in rows] == cfg["translator"]
    ent = [r["entropy"] for r in rows]
    assert all(np.isfinite(ent)) and ent[0] != ent[1]  # the two probes read the scans differently
    assert choice["chosen"] == cfg["translator"][int(np.argmin(ent))]
    # the regimes were trained (and the held-out set translated) with the chosen translator
    fly = torch.load(f"{cfg['out']}/runs/style/last.pt", weights_only=True)["data"]["style_on_the_fly"]
    assert fly["translators"][0]["sha256"] == hashlib.sha256(Path(choice["chosen"]).read_bytes()).hexdigest()
    assert json.load(open(f"{cfg['out']}/translator_choice/choice.json"))["chosen"] == choice["chosen"]
    assert "chosen without labels" in open(res["files"]["md"]).read()
    # resuming trains nothing again
    probe = Path(cfg["out"]) / "translator_choice" / "0" / "last.pt"
    before = probe.stat().st_mtime_ns
    again = run_experiment(cfg)
    assert probe.stat().st_mtime_ns == before and again["translator_choice"]["chosen"] == choice["chosen"]


def test_translator_candidates_are_checked_before_any_work(tmp_path):
    with pytest.raises(FileNotFoundError, match="translator weights not found"):
        ExperimentConfig(sim="a", heldout="b", exp="c", out=str(tmp_path), translator=["nope.pt", "nix.pt"])
    with pytest.raises(ValueError, match="choice_epochs"):
        ExperimentConfig(sim="a", heldout="b", exp="c", out=str(tmp_path), choice_epochs=0)


def test_translator_choice_by_resimulation_agreement(translator_choice, tmp_path):
    """The slower criterion re-simulates each probe's prediction with ppafm and keeps the
    translator whose probe explains the scans best (probes reused from the entropy run)."""
    import shutil

    from napari_afm_style.experiment import choose_translator
    from napari_afm_style.experiment import read_scans

    cfg, _ = translator_choice
    out = tmp_path / "out"
    shutil.copytree(f"{cfg['out']}/translator_choice", out / "translator_choice")
    cfg2 = ExperimentConfig(**{**cfg, "out": str(out), "choice_criterion": "resim_ncc", "choice_scans": 1})
    choice = choose_translator(cfg2, read_scans(cfg["exp"])[1])
    ncc = [r["resim_ncc"] for r in choice["candidates"]]
    assert all(0.2 < v <= 1 for v in ncc)  # a real re-simulation of predicted water, not noise
    assert choice["chosen"] == cfg["translator"][int(np.argmax(ncc))]
    assert "re-simulation" in choice["criterion"]


def test_the_experiment_command_trains_reports_and_resumes(tmp_path, capsys):
    """`afm-style experiment` as a user types it: one regime, tiny data; the report goes to
    stdout, a second identical command resumes without training again."""
    import os

    from napari_afm_style._sample_data import EXP_STACK, data_path
    from napari_afm_style.cli import main
    from napari_afm_style.io import read_stack, write_stack

    exp = tmp_path / "exp"
    exp.mkdir()
    scan = read_stack(data_path(EXP_STACK))
    write_stack(scan, exp / "scan_a.npz")
    write_stack(scan.replace(data=scan.data[:, ::-1].copy()), exp / "scan_b.npz")
    args = ["experiment", "--sim", str(write_shards(tmp_path / "sim", 8, seed=0)),
            "--heldout", str(write_shards(tmp_path / "ho", 4, seed=1)), "--exp", str(exp),
            "--out", str(tmp_path / "out"), "--regimes", "pure", "--epochs", "1", "--batch-size", "4",
            "--lr", "1e-5", "--init-from", "pure", "--bootstrap", "20", "--jobs", "1", "--no-progress",
            "--device", "cpu"]
    assert main(args) == 0
    report = capsys.readouterr().out
    assert "| pure |" in report
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["regimes"]["pure"]["atoms"]["n_O_total"] > 0
    stamp = os.stat(tmp_path / "out" / "runs" / "pure" / "last.pt").st_mtime_ns
    assert main(args) == 0
    assert os.stat(tmp_path / "out" / "runs" / "pure" / "last.pt").st_mtime_ns == stamp
