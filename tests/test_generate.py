"""Training-set generation: determinism, resume without corruption, local and Dask."""

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from napari_afm_style.generate import GenerationConfig, generate_dataset, load_shards, shard_path

SMALL = dict(n_samples=4, shard_size=2, size_px=48, pixel_size_A=0.25, n_heights=3,
             height_step_A=0.1, kinds=("bilayer",), overhang_A=(2.0, 2.0))


def _theory_file():
    """A structure file to stand in for a theoretical one: the bundled sample (a bilayer on
    Au(111); its upper layer is what --theory-remove-upper thins)."""
    return Path(str(resources.files("napari_afm_style.data") / "sample_water_sim.xyz"))


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

    from napari_afm_style.cli.generate import configure as configure_generate_parser
    from napari_afm_style.cli.generate import run as run_generate

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
    with pytest.raises(ValueError, match="theory-remove-upper"):
        run_generate(p.parse_args([str(tmp_path / "d"), "--theory-remove-upper", "0.6", "0.2"]))
    assert not (tmp_path / "d").exists()


def test_cli_theory_augmentation(tmp_path):
    import argparse

    from napari_afm_style.cli.generate import configure as configure_generate_parser
    from napari_afm_style.cli.generate import run as run_generate

    theory = tmp_path / "theory"
    theory.mkdir()
    (theory / "1.xyz").write_bytes(_theory_file().read_bytes())
    p = argparse.ArgumentParser()
    configure_generate_parser(p)
    args = p.parse_args([str(tmp_path / "t"), "-n", "2", "--shard-size", "2", "--size-px", "40",
                         "--pixel-size", "0.25", "--n-heights", "3", "--theory-dir", str(theory),
                         "--theory-fraction", "1", "--theory-mirror", "--theory-remove-upper", "1", "1",
                         "--no-progress"])
    assert run_generate(args) == 0
    cfg = json.loads((tmp_path / "t" / "dataset.json").read_text())["config"]
    assert cfg["theory_mirror"] is True and cfg["theory_remove_upper"] == [1.0, 1.0]
    data = load_shards(tmp_path / "t")
    assert list(data["kind"]) == ["theory", "theory"]
    # every upper molecule was removed: the labelled O all lie in the contact layer
    for i in range(2):
        o = data["atom_positions_A"][i][data["atom_numbers"][i] == 8]
        assert len(o) > 0 and np.ptp(o[:, 2]) < 1.0


def test_remove_upper_molecules_keeps_the_contact_layer_and_whole_molecules():
    from napari_afm_style.generate import UPPER_MOLECULE_GAP_A, remove_upper_molecules
    from napari_afm_style.io import read_atoms

    atoms = read_atoms(_theory_file())
    o = atoms.numbers == 8
    upper = o & (atoms.positions[:, 2] > atoms.positions[o, 2].min() + UPPER_MOLECULE_GAP_A)
    assert 0 < upper.sum() < o.sum()
    rng = np.random.default_rng(0)
    assert remove_upper_molecules(atoms, 0.0, rng) is atoms
    bare = remove_upper_molecules(atoms, 1.0, rng)
    # every upper O goes with its two H; the substrate and the contact layer stay, in order
    assert (bare.numbers == 8).sum() == o.sum() - upper.sum()
    assert (bare.numbers == 1).sum() == (atoms.numbers == 1).sum() - 2 * upper.sum()
    assert np.array_equal(bare.positions[bare.numbers == 79], atoms.positions[atoms.numbers == 79])
    assert np.array_equal(bare.positions[bare.numbers == 8], atoms.positions[o & ~upper])
    half = remove_upper_molecules(atoms, 0.5, np.random.default_rng(1))
    assert o.sum() - upper.sum() < (half.numbers == 8).sum() < o.sum()


def test_theory_augmentation_options(tmp_path):
    from napari_afm_style.generate import UPPER_MOLECULE_GAP_A, sample_setup

    files = [_theory_file()]
    base = GenerationConfig(seed=3, size_px=64, theory_fraction=1.0)
    plain_atoms = [sample_setup(base, i, files)[0] for i in range(6)]
    # options off draw nothing from the sample's generator: older sets reproduce exactly.
    # Pinned: structure, closest height and tip of samples 0 and 1 as the code before these
    # options existed (commit bb4dd6c) drew them
    for i, (n_atoms, first_o, closest, k_xy) in enumerate([
            (290, [4.4322, -9.0145, 8.0675], 15.271072806064367, 0.20941286422403993),
            (287, [-5.1536, 0.5458, 8.0675], 15.11635614399868, 0.2538761353782578)]):
        atoms, like, tip = sample_setup(base, i, files)
        assert len(atoms) == n_atoms
        np.testing.assert_allclose(atoms.positions[atoms.numbers == 8][0], first_o, atol=1e-4)
        assert like.heights_A[-1] == pytest.approx(closest, abs=1e-9)
        assert tip.k_xy_N_per_m == pytest.approx(k_xy, abs=1e-12)
    thinned = GenerationConfig(seed=3, size_px=64, theory_fraction=1.0, theory_remove_upper=(1.0, 1.0))
    n_removed = 0
    for i, a in enumerate(plain_atoms):
        b = sample_setup(thinned, i, files)[0]
        oz = a.positions[a.numbers == 8, 2]
        n_upper = int(np.sum(oz > oz.min() + UPPER_MOLECULE_GAP_A))
        assert (b.numbers == 8).sum() == len(oz) - n_upper and (b.numbers == 79).sum() == (a.numbers == 79).sum()
        n_removed += n_upper
    assert n_removed > 0
    # mirroring flips about half of the structures (same file, same draws before it)
    mirrored = GenerationConfig(seed=3, size_px=64, theory_fraction=1.0, theory_mirror=True)
    flipped = 0
    for i, a in enumerate(plain_atoms):
        b = sample_setup(mirrored, i, files)[0]
        assert np.allclose(b.positions[:, 0], a.positions[:, 0])
        flipped += bool(np.allclose(b.positions[:, 1], -a.positions[:, 1]) and not np.allclose(a.positions[:, 1], 0))
    assert 1 <= flipped <= 5


def test_sets_made_before_a_config_field_existed_resume(tmp_path):
    cfg = GenerationConfig(seed=1, **{**SMALL, "n_samples": 2})
    generate_dataset(tmp_path / "d", cfg, progress=False)
    manifest = tmp_path / "d" / "dataset.json"
    info = json.loads(manifest.read_text())
    for key in ("theory_mirror", "theory_remove_upper"):  # as written by an older version
        del info["config"][key]
    manifest.write_text(json.dumps(info))
    assert generate_dataset(tmp_path / "d", cfg, progress=False)["shards_skipped"] == 1
    with pytest.raises(ValueError, match="other parameters"):
        generate_dataset(tmp_path / "d", GenerationConfig(seed=1, theory_mirror=True, **{**SMALL, "n_samples": 2}),
                         progress=False)


def test_cli_two_workers_and_the_held_out_theory_subset(tmp_path):
    """`afm-style generate --workers 2` makes exactly the set one process makes, and
    `--theory-subset heldout` draws only the last sixth of the sorted theory files."""
    from napari_afm_style.cli import main

    theory = tmp_path / "theory"
    theory.mkdir()
    for i in range(6):  # five "train" files and one "heldout" file (the last in sorted order)
        (theory / f"{i}.xyz").write_bytes(_theory_file().read_bytes())
    common = ["-n", "4", "--shard-size", "2", "--size-px", "40", "--pixel-size", "0.25", "--n-heights", "3",
              "--seed", "11", "--theory-dir", str(theory), "--theory-fraction", "1", "--theory-subset", "heldout",
              "--no-progress"]
    assert main(["generate", str(tmp_path / "two"), "--workers", "2", *common]) == 0
    assert main(["generate", str(tmp_path / "one"), *common]) == 0
    a, b = load_shards(tmp_path / "two"), load_shards(tmp_path / "one")
    assert np.array_equal(a["df"], b["df"]) and np.array_equal(a["atom_positions_A"], b["atom_positions_A"])
    cfg = json.loads((tmp_path / "two" / "dataset.json").read_text())["config"]
    assert cfg["theory_subset"] == "heldout"
    assert list(a["kind"]) == ["theory"] * 4
    from napari_afm_style.generate import GenerationConfig, _theory_files

    held = _theory_files(GenerationConfig(theory_dir=str(theory), theory_subset="heldout"))
    train = _theory_files(GenerationConfig(theory_dir=str(theory), theory_subset="train"))
    assert [p.name for p in held] == ["5.xyz"] and [p.name for p in train] == [f"{i}.xyz" for i in range(5)]


def test_tip_tilt_and_multipoles_vary_the_tip_not_the_structures(tmp_path):
    from napari_afm_style.generate import sample_setup

    plain = GenerationConfig(seed=5, **SMALL)
    varied = GenerationConfig(seed=5, tip_tilt_A=(0.2, 0.4), tip_multipoles=("s", "pz", "dz2"), **SMALL)
    tilts, poles = [], set()
    for i in range(12):
        a0, like0, tip0 = sample_setup(plain, i)
        a1, like1, tip1 = sample_setup(varied, i)
        # the same structure, scan and stiffness/charge: only the tip's tilt and multipole are new draws
        np.testing.assert_array_equal(a0.positions, a1.positions)
        np.testing.assert_array_equal(like0.heights_A, like1.heights_A)
        assert (tip0.k_xy_N_per_m, tip0.charge_e) == (tip1.k_xy_N_per_m, tip1.charge_e)
        assert tip0.r0_A == (0.0, 0.0, 3.0) and tip0.multipole == "dz2"
        tilts.append(float(np.hypot(*tip1.r0_A[:2])))
        poles.add(tip1.multipole)
    assert 0.2 - 1e-9 <= min(tilts) and max(tilts) <= 0.4 + 1e-9 and len(set(np.round(tilts, 6))) == 12
    assert poles == {"s", "pz", "dz2"}
    generate_dataset(tmp_path / "v", GenerationConfig(seed=5, tip_tilt_A=(0.2, 0.4), tip_multipoles=("s", "pz"),
                                                      **SMALL), progress=False)
    data = load_shards(tmp_path / "v")
    assert data["tip_r0_A"].shape == (4, 3) and set(data["tip_multipole"]) <= {"s", "pz"}
    with pytest.raises(ValueError, match="tip_tilt_A"):
        GenerationConfig(tip_tilt_A=(0.5, 0.2))
    with pytest.raises(ValueError, match="tip_multipoles"):
        GenerationConfig(tip_multipoles=("quadrupole",))


def test_a_runaway_simulation_is_retried_with_an_upright_default_tip(monkeypatch, caplog):
    """ppafm's relaxation can run away for a strongly tilted s-charged tip (Δf ~1e7 Hz); the
    sample is then simulated with the tip upright, then with the default charge, and the
    tip actually used is what the sample records."""
    import napari_afm_style.simulate as sim
    from napari_afm_style.generate import make_sample

    real, calls = sim.simulate, []

    def flaky(atoms, like, tip, *a, **k):
        calls.append((tip.multipole, tuple(tip.r0_A)))
        if len(calls) < 3:
            raise ValueError("Δf values up to 1.82e+07 Hz are not plausible")
        return real(atoms, like, tip, *a, **k)

    monkeypatch.setattr(sim, "simulate", flaky)
    cfg = GenerationConfig(seed=5, tip_tilt_A=(0.3, 0.3), tip_multipoles=("s",), **SMALL)
    s = make_sample(cfg, 0)
    assert calls[0][0] == "s" and abs(np.hypot(*calls[0][1][:2]) - 0.3) < 1e-9
    assert calls[1] == ("s", (0.0, 0.0, 3.0)) and calls[2] == ("dz2", (0.0, 0.0, 3.0))
    assert s["tip_multipole"] == "dz2" and s["tip_r0_A"] == [0.0, 0.0, 3.0]
    assert "retrying" in caplog.text
    calls.clear()
    monkeypatch.setattr(sim, "simulate", lambda *a, **k: (_ for _ in ()).throw(ValueError("always")))
    with pytest.raises(ValueError, match="always"):
        make_sample(cfg, 0)


def test_shard_ranges_fill_the_set_like_one_run(tmp_path):
    """Two range jobs (a SLURM array) writing into one folder make the set one run makes,
    byte for byte, and the folder stays resumable in between."""
    from napari_afm_style.cli import main

    common = ["-n", "3", "--shard-size", "1", "--size-px", "40", "--pixel-size", "0.25", "--n-heights", "2",
              "--seed", "4", "--no-progress"]
    assert main(["generate", str(tmp_path / "full"), *common]) == 0
    cfg = GenerationConfig(seed=4, n_samples=3, shard_size=1, size_px=40, pixel_size_A=0.25, n_heights=2)
    first = generate_dataset(tmp_path / "ranges", cfg, shards="2:", progress=False)
    assert (first["shards"], first["shards_written"], first["shards_missing_in_set"]) == ([2, 3], 1, 2)
    assert not shard_path(tmp_path / "ranges", 0).exists()
    # the second job, through the command line; the manifest is the one of the full run
    assert main(["generate", str(tmp_path / "ranges"), "--shards", "0:2", *common]) == 0
    for name in ("dataset.json", "shard_00000.npz", "shard_00001.npz", "shard_00002.npz"):
        assert (tmp_path / "ranges" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    again = generate_dataset(tmp_path / "ranges", cfg, shards=(1, None), progress=False)
    assert again["shards_skipped"] == 2 and again["shards_written"] == 0 and again["shards_missing_in_set"] == 0
    with pytest.raises(ValueError, match="shard range"):
        generate_dataset(tmp_path / "ranges", cfg, shards="2:5", progress=False)
    with pytest.raises(ValueError, match="other parameters"):
        generate_dataset(tmp_path / "ranges", GenerationConfig(seed=5, **{**SMALL, "n_samples": 3}),
                         shards="0:1", progress=False)


@pytest.mark.slow
def test_dask_scheduler_file_and_retries(tmp_path, monkeypatch):
    """A cluster found through its scheduler file; a shard task that fails once is retried."""
    distributed = pytest.importorskip("dask.distributed")
    from napari_afm_style.training import generate as gen

    cfg = GenerationConfig(seed=11, **SMALL)
    real, marker = gen._write_shard, tmp_path / "failed_once"

    def flaky(config, out_dir, index, progress=None):
        if index == 1 and not marker.exists():
            marker.write_text("x")
            raise OSError("worker lost its file system")
        return real(config, out_dir, index, progress)

    monkeypatch.setattr(gen, "_write_shard", flaky)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        client.write_scheduler_file(str(tmp_path / "scheduler.json"))
        with pytest.raises(ValueError, match="not both"):
            generate_dataset(tmp_path / "x", cfg, scheduler=cluster.scheduler_address,
                             scheduler_file=tmp_path / "scheduler.json", progress=False)
        summary = generate_dataset(tmp_path / "dask", cfg, scheduler_file=tmp_path / "scheduler.json",
                                   retries=1, progress=False)
    assert marker.exists() and summary["shards_written"] == 2
    monkeypatch.setattr(gen, "_write_shard", real)
    generate_dataset(tmp_path / "local", cfg, progress=False)
    for k in range(2):
        assert shard_path(tmp_path / "dask", k).read_bytes() == shard_path(tmp_path / "local", k).read_bytes()
