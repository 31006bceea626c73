"""Training-set generation: determinism, resume without corruption, local and Dask."""

import json

import numpy as np
import pytest

from napari_afm_style.generate import GenerationConfig, generate_dataset, load_shards, shard_path

SMALL = dict(n_samples=4, shard_size=2, size_px=48, pixel_size_A=0.25, n_heights=3,
             height_step_A=0.1, kinds=("bilayer",), overhang_A=(2.0, 2.0))


def test_generate_writes_consistent_shards(tmp_path):
    cfg = GenerationConfig(seed=5, **SMALL)
    summary = generate_dataset(tmp_path / "a", cfg, progress=False)
    assert summary["shards_written"] == 2 and summary["samples_simulated"] == 4
    data = load_shards(tmp_path / "a")
    assert data["df"].shape == (4, 3, 48, 48) and data["df"].dtype == np.float32
    assert np.all(np.isfinite(data["df"]))
    # labels: only O and H, inside the window, 2 H per O on average within the window margin
    numbers = data["atom_numbers"]
    assert set(np.unique(numbers)) <= {0, 1, 8}
    for i in range(4):
        pos = data["atom_positions_A"][i][numbers[i] > 0]
        x0, y0 = data["origin_A"][i]
        assert np.all(pos[:, 0] >= x0 - 0.51) and np.all(pos[:, 0] <= x0 + 47 * 0.25 + 0.51)
        # the closest tip height sits 2.8-3.8 Å above the topmost adsorbate atom
        gap = data["heights_A"][i, -1] - pos[:, 2].max()
        assert 2.7 < gap < 3.9
    manifest = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert manifest["units"]["df"] == "Hz" and manifest["n_shards"] == 2


def test_generation_is_deterministic_and_resumable(tmp_path):
    cfg = GenerationConfig(seed=11, **SMALL)
    generate_dataset(tmp_path / "full", cfg, progress=False)
    # interrupted run: first shard present, second one half-written (truncated)
    generate_dataset(tmp_path / "resumed", cfg, progress=False)
    broken = shard_path(tmp_path / "resumed", 1)
    broken.write_bytes(broken.read_bytes()[:1000])
    summary = generate_dataset(tmp_path / "resumed", cfg, progress=False)
    assert summary["shards_skipped"] == 1 and summary["shards_written"] == 1
    a, b = load_shards(tmp_path / "full"), load_shards(tmp_path / "resumed")
    for key in ("df", "atom_numbers", "atom_positions_A", "heights_A"):
        assert np.array_equal(a[key], b[key]), key


def test_resume_with_other_parameters_is_refused(tmp_path):
    generate_dataset(tmp_path / "d", GenerationConfig(seed=1, **{**SMALL, "n_samples": 2}), progress=False)
    with pytest.raises(ValueError, match="other parameters"):
        generate_dataset(tmp_path / "d", GenerationConfig(seed=2, **{**SMALL, "n_samples": 2}),
                         progress=False)


@pytest.mark.slow
def test_dask_cluster_of_two_workers_gives_the_same_set(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    cfg = GenerationConfig(seed=11, **SMALL)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        summary = generate_dataset(tmp_path / "dask", cfg, scheduler=cluster.scheduler_address,
                                   progress=False)
    assert summary["shards_written"] == 2
    generate_dataset(tmp_path / "local", cfg, progress=False)
    a, b = load_shards(tmp_path / "dask"), load_shards(tmp_path / "local")
    assert np.array_equal(a["df"], b["df"])


def test_cli_closest_offset_and_tip_stiffness(tmp_path):
    import argparse

    from napari_afm_style.generate import configure_generate_parser, run_generate

    p = argparse.ArgumentParser()
    configure_generate_parser(p)
    args = p.parse_args([str(tmp_path / "c"), "-n", "2", "--shard-size", "2", "--size-px", "40",
                         "--pixel-size", "0.25", "--n-heights", "3", "--closest-offset", "2.0", "2.2",
                         "--tip-k-xy", "0.15", "0.16", "--no-progress"])
    assert run_generate(args) == 0
    data = load_shards(tmp_path / "c")
    cfg = json.loads((tmp_path / "c" / "dataset.json").read_text())["config"]
    assert cfg["closest_offset_A"] == [2.0, 2.2] and cfg["tip_k_xy_N_per_m"] == [0.15, 0.16]
    for i in range(2):
        pos = data["atom_positions_A"][i][data["atom_numbers"][i] > 0]
        # the topmost atom of the structure may lie outside the window: the window's atoms are lower
        assert data["heights_A"][i, -1] - pos[:, 2].max() > 1.95
        assert 0.15 <= data["tip"][i, 0] <= 0.16
    with pytest.raises(ValueError, match="closest-offset"):
        run_generate(p.parse_args([str(tmp_path / "d"), "--closest-offset", "0.5", "3"]))
