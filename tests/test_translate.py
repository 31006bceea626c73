"""CycleGAN losses and training, checkpoints, and the translate API / CLI."""

import argparse
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_afm_style import AFMStack
from napari_afm_style.models.cyclegan import (
    CycleGAN,
    CycleGANConfig,
    ImagePool,
    ResidualGenerator,
    cycle_loss,
    identity_loss,
    lsgan_d_loss,
    lsgan_g_loss,
)
from napari_afm_style.train_translator import (
    CycleGANTrainer,
    TrainConfig,
    configure_train_translator_parser,
    export_translator,
    load_checkpoint,
    run_train_translator,
    save_checkpoint,
)
from napari_afm_style import translate as tmod
from napari_afm_style.cli.translate import configure as configure_translate_parser
from napari_afm_style.cli.translate import run as run_translate
from napari_afm_style.translate import (
    Translator,
    TranslatorNotAvailable,
    load_translator,
    prepare_translation,
    translate,
)

torch.set_num_threads(1)

TINY = CycleGANConfig(n_channels=4, gen_channels=(8, 8, 8), n_res_blocks=1, disc_channels=(8, 8, 8))
TINY10 = CycleGANConfig(n_channels=10, gen_channels=(8, 8, 8), n_res_blocks=1, disc_channels=(8, 8, 8))


def _smooth_set(rng, n, c=4, size=40):
    out = []
    for _ in range(n):
        a = ndimage.gaussian_filter(rng.normal(size=(c, size, size)), (0, 2, 2))
        out.append(((a - a.mean((1, 2), keepdims=True)) / a.std((1, 2), keepdims=True)).astype(np.float32))
    return out


def _two_domains(seed=0, n=8, c=4, size=40):
    """'sim' = smooth blobs; 'exp' = smooth blobs + horizontal stripes + white noise."""
    rng = np.random.default_rng(seed)
    sim = _smooth_set(rng, n, c, size)
    stripes = 0.8 * np.sin(1.3 * np.arange(size))[None, :, None]
    exp = [(a + stripes + 0.3 * rng.normal(size=a.shape)).astype(np.float32) for a in _smooth_set(rng, n, c, size)]
    return sim, exp


def _stack(seed=0, shape=(10, 48, 48), pixel_size_A=0.125, step_A=0.1):
    rng = np.random.default_rng(seed)
    nh, ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx] * pixel_size_A
    data = np.stack([-3.0 * np.exp(-((x - 3) ** 2 + (y - 2.5) ** 2) / (1.0 + 0.3 * i)) - 1.0 - 0.1 * i
                     for i in range(nh)]) + 0.05 * rng.normal(size=shape)
    heights = 10.0 + step_A * np.arange(nh - 1, -1, -1)
    return AFMStack(data, heights, pixel_size_A, (1.0, 2.0), metadata={"source": "test"})


# -- losses ----------------------------------------------------------------------------------

def test_lsgan_losses_on_known_inputs():
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert float(lsgan_d_loss(ones, zeros)) == 0.0          # perfect discriminator
    assert float(lsgan_d_loss(zeros, ones)) == pytest.approx(1.0)  # ½(1 + 1)
    assert float(lsgan_d_loss(0.5 * ones, 0.5 * ones)) == pytest.approx(0.25)
    assert float(lsgan_g_loss(ones)) == 0.0
    assert float(lsgan_g_loss(zeros)) == pytest.approx(1.0)
    assert float(lsgan_g_loss(torch.tensor([0.0, 2.0]))) == pytest.approx(1.0)


def test_cycle_and_identity_losses_vanish_for_identity_generators():
    g, f = ResidualGenerator(TINY), ResidualGenerator(TINY)
    for gen in (g, f):
        torch.nn.init.zeros_(gen.out.weight)
        torch.nn.init.zeros_(gen.out.bias)
    x = torch.randn(2, 4, 20, 28)  # not a multiple of 4: the padding path is used too
    assert torch.equal(g.translate(x), x)
    with torch.no_grad():
        assert float(cycle_loss(x, f.translate(g.translate(x)))) == 0.0
        assert float(identity_loss(x, g.translate(x))) == 0.0
    # a generator that adds a constant 0.3 everywhere: identity loss = 0.3
    torch.nn.init.constant_(g.out.bias, 0.3)
    with torch.no_grad():
        assert float(identity_loss(x, g.translate(x))) == pytest.approx(0.3, abs=1e-6)
        assert float(cycle_loss(x, g.translate(g.translate(x)))) == pytest.approx(0.6, abs=1e-6)
        # strength scales the residual linearly
        assert torch.allclose(g.translate(x, 0.5) - x, 0.5 * (g.translate(x) - x))


def test_image_pool_returns_history_and_resumes():
    pool = ImagePool(size=3, seed=1)
    first = torch.arange(3.0).reshape(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as given
    state = pool.state_dict()
    twin = ImagePool(size=3, seed=99)
    twin.load_state_dict(state)
    batch = 10 + torch.arange(8.0).reshape(8, 1, 1, 1)
    a, b = pool.query(batch), twin.query(batch)
    assert torch.equal(a, b)  # same RNG state and history → same draws
    assert any(v < 10 for v in a.flatten().tolist())  # some came from the history


# -- training --------------------------------------------------------------------------------

def test_few_training_steps_lower_the_losses():
    sim, exp = _two_domains()
    tr = CycleGANTrainer(CycleGAN(TINY, seed=0), TrainConfig(steps=100, batch_size=2, crop=32, lr=2e-3, seed=0,
                                                             lambda_cycle=10.0, lambda_identity=5.0))
    hist = [tr.train_step(*tr.next_batches(sim, exp)) for _ in range(50)]

    def mean(k, sl):
        return np.mean([h[k] for h in hist[sl]])

    # the reconstruction terms and the discriminators improve fast; the generator's
    # total improves more slowly because its adversarial term grows as D gets better
    for k in ("cycle", "identity", "d_exp", "d_sim"):
        assert mean(k, slice(-10, None)) < 0.6 * mean(k, slice(0, 5)), k
    assert mean("g_total", slice(-10, None)) < 0.85 * mean("g_total", slice(0, 5))
    assert tr.step == 50


def test_checkpoint_resume_restores_step_weights_and_continues_identically(tmp_path):
    sim, exp = _two_domains(seed=3)
    cfg = TrainConfig(steps=20, batch_size=2, crop=32, lr=1e-3, seed=5, pool_size=2)
    a = CycleGANTrainer(CycleGAN(TINY, seed=5), cfg)
    for _ in range(4):
        a.train_step(*a.next_batches(sim, exp))
    path = save_checkpoint(a.state_dict(), tmp_path / "ck" / "last.pt")
    b = CycleGANTrainer.from_state(load_checkpoint(tmp_path / "ck"))
    assert b.step == 4
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    # the next steps (data draws, pools, Adam moments) are the same in both
    for _ in range(2):
        la = a.train_step(*a.next_batches(sim, exp))
        lb = b.train_step(*b.next_batches(sim, exp))
        assert la == lb
    for va, vb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(va, vb)
    assert path.exists() and not list(path.parent.glob(".*"))  # atomic write left no temp file


# -- translate API -------------------------------------------------------------------------

@pytest.fixture
def tiny_translator():
    return Translator.from_model(CycleGAN(TINY10, seed=1), name="tiny test model")


def test_strength_zero_returns_the_input_exactly(tiny_translator):
    s = _stack()
    out = translate(s, "backward", 0.0, tiny_translator)
    assert np.array_equal(out.data, s.data)
    assert out.data is not s.data
    assert out.metadata["translation"]["strength"] == 0.0
    assert out.metadata["translation"]["direction"] == "backward"
    assert out.metadata["history"][-1]["step"] == "translate"
    assert "translation" not in s.metadata  # the input is untouched


def test_strength_change_rescales_the_cached_residual_without_network(tiny_translator):
    s = _stack(1)
    t = prepare_translation(s, "forward", tiny_translator)
    assert tiny_translator.n_network_calls == 1
    full, half, zero = t.at(1.0), t.at(0.5), t.at(0.0)
    assert tiny_translator.n_network_calls == 1
    assert np.abs(full.data - s.data).max() > 1e-3  # the random net does change the stack
    np.testing.assert_allclose(half.data - s.data, 0.5 * (full.data - s.data), atol=1e-5)
    assert np.array_equal(zero.data, s.data)
    np.testing.assert_allclose(translate(s, "forward", 1.0, tiny_translator).data, full.data, atol=1e-6)
    assert tiny_translator.n_network_calls == 2


def test_output_keeps_the_input_grid_and_records_resampling(tiny_translator, small_stack):
    # 5 heights 0.1 Å apart, 0.2 Å pixels, 24 × 32: both lateral and height resampling
    out = translate(small_stack, "backward", 1.0, tiny_translator)
    assert out.shape == small_stack.shape
    np.testing.assert_array_equal(out.heights_A, small_stack.heights_A)
    assert out.pixel_size_A == small_stack.pixel_size_A
    np.testing.assert_array_equal(out.origin_A, small_stack.origin_A)
    rs = out.metadata["translation"]["resampling"]
    assert rs["to_canonical"]["lateral_resampled"] is True
    assert "anti_alias_sigma_px" in rs["back_to_input"]
    assert rs["back_to_input"]["n_heights_beyond_canonical"] == 0
    assert np.all(np.isfinite(out.data)) and not np.array_equal(out.data, small_stack.data)
    json.dumps(out.metadata)  # serialisable
    # 15 heights span 1.4 Å: the 5 farthest lie beyond the canonical 0.9 Å
    tall = _stack(5, shape=(15, 40, 40))
    out = translate(tall, "forward", 1.0, tiny_translator)
    assert out.shape == tall.shape
    assert out.metadata["translation"]["resampling"]["back_to_input"]["n_heights_beyond_canonical"] == 5
    # a canonical stack needs no resampling back
    canon = translate(_stack(), "backward", 1.0, tiny_translator)
    assert canon.metadata["translation"]["resampling"]["back_to_input"] == "none needed"


def test_bad_arguments_and_missing_weights(tiny_translator, tmp_path, monkeypatch):
    s = _stack()
    with pytest.raises(ValueError, match="direction"):
        translate(s, "sideways", 1.0, tiny_translator)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="strength"):
            translate(s, "forward", bad, tiny_translator)
    with pytest.raises(ValueError, match="recommended"):
        translate(s, "forward", "recommended", tiny_translator)
    monkeypatch.setattr(tmod, "default_translator_path", lambda: tmp_path / "absent.pt")
    with pytest.raises(TranslatorNotAvailable, match="train-translator"):
        translate(s, "forward", 1.0)
    with pytest.raises(TranslatorNotAvailable):
        load_translator(tmp_path / "nope.pt")


# -- checkpoints, export, CLI ------------------------------------------------------------------

def _tiny_checkpoint(tmp_path, rec=None):
    tr = CycleGANTrainer(CycleGAN(TINY10, seed=2), TrainConfig(steps=1, batch_size=1, crop=32, seed=2))
    rng = np.random.default_rng(0)
    arrs = [rng.normal(size=(10, 40, 40)).astype(np.float32) for _ in range(2)]
    tr.train_step(*tr.next_batches(arrs, arrs))
    st = tr.state_dict()
    st.update(recommended_strength=rec or {"forward": 0.7, "backward": 0.4}, finished=True)
    return save_checkpoint(st, tmp_path / "run" / "last.pt")


def test_export_roundtrip_and_recommended_strength(tmp_path):
    ck = _tiny_checkpoint(tmp_path)
    path = export_translator(ck, tmp_path / "translator.pt")
    assert path.stat().st_size < 20e6
    card = path.with_suffix(".md").read_text()
    assert "Recommended strength" in card and "forward" in card
    s = _stack(2)
    a = translate(s, "forward", 1.0, path)
    b = translate(s, "forward", 1.0, tmp_path / "run")  # the checkpoint folder gives the same generators
    np.testing.assert_array_equal(a.data, b.data)
    rec = prepare_translation(s, "forward", path)
    assert rec.recommended_strength == 0.7
    np.testing.assert_allclose(rec.at("recommended").data, rec.at(0.7).data)
    assert "sha256" in a.metadata["translation"]["model"]


def _ns(configure, argv):
    p = argparse.ArgumentParser()
    configure(p)
    return p.parse_args(argv)


def test_cli_translate_stack_and_shard_folder(tmp_path):
    from napari_afm_style.io import read_stack, write_stack

    model = export_translator(_tiny_checkpoint(tmp_path), tmp_path / "t.pt")
    src = write_stack(_stack(4), tmp_path / "in.npz")
    assert run_translate(_ns(configure_translate_parser,
                             [str(src), "-o", str(tmp_path / "out.npz"), "--direction", "forward",
                              "--strength", "0.5", "--model", str(model)])) == 0
    out = read_stack(tmp_path / "out.npz")
    assert out.shape == (10, 48, 48) and out.metadata["translation"]["strength"] == 0.5

    shards = tmp_path / "sim"
    shards.mkdir()
    (shards / "dataset.json").write_text(json.dumps({"config": {"seed": 0}}))
    for k in range(2):
        st = [_stack(10 + 3 * k + i) for i in range(3)]
        np.savez(shards / f"shard_{k:05d}.npz", df=np.stack([s.data for s in st]),
                 heights_A=np.stack([s.heights_A for s in st]), pixel_size_A=np.full(3, 0.125),
                 origin_A=np.zeros((3, 2)), f0_Hz=np.full(3, 30300.0), k_N_per_m=np.full(3, 1800.0),
                 amplitude_A=np.ones(3), atom_numbers=np.full((3, 4), 8, np.int16),
                 atom_positions_A=np.ones((3, 4, 3), np.float32), seed=np.zeros(3))
    args = _ns(configure_translate_parser, [str(shards), "-o", str(tmp_path / "sim_fwd"), "--direction",
                                            "forward", "--model", str(model), "--no-progress"])
    assert run_translate(args) == 0
    manifest = json.loads((tmp_path / "sim_fwd" / "dataset.json").read_text())
    assert manifest["translation"]["direction"] == "forward" and manifest["config"] == {"seed": 0}
    with np.load(shards / "shard_00001.npz") as zi, np.load(tmp_path / "sim_fwd" / "shard_00001.npz") as zo:
        assert set(zi.files) == set(zo.files)
        np.testing.assert_array_equal(zi["atom_positions_A"], zo["atom_positions_A"])
        assert zo["df"].shape == zi["df"].shape and not np.array_equal(zo["df"], zi["df"])
        expected = translate(_stack(13), "forward", 1.0, model).data
        np.testing.assert_allclose(zo["df"][0], expected, atol=1e-5)
    # resume: a finished shard is not redone; a missing one is
    (tmp_path / "sim_fwd" / "shard_00000.npz").unlink()
    mtime = (tmp_path / "sim_fwd" / "shard_00001.npz").stat().st_mtime_ns
    summary = tmod.translate_shards(shards, tmp_path / "sim_fwd", "forward", 1.0, model, progress=False)
    assert summary["shards_written"] == 1 and summary["shards_skipped"] == 1
    assert (tmp_path / "sim_fwd" / "shard_00001.npz").stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="other settings"):
        tmod.translate_shards(shards, tmp_path / "sim_fwd", "forward", 0.5, model, progress=False)
    for bad in (0, -2, 1.5):  # -2 used to copy the input unchanged under a "strength 1" manifest
        with pytest.raises(ValueError, match="batch_size"):
            tmod.translate_shards(shards, tmp_path / f"bad{bad}", "forward", 1.0, model, progress=False,
                                  batch_size=bad)
        assert not (tmp_path / f"bad{bad}").exists()  # refused before any folder is made


def _write_domains(tmp_path, first_seed: int, n: int = 6):
    """Folders of n smooth "simulated" stacks and the same stacks with white noise."""
    from napari_afm_style.io import write_stack

    rng = np.random.default_rng(0)
    sim_dir, exp_dir = tmp_path / "sim", tmp_path / "exp"
    for i in range(n):
        s = _stack(first_seed + i, shape=(10, 40, 40))
        write_stack(s, sim_dir / f"s{i}.npz")
        write_stack(s.replace(data=s.data + 0.3 * rng.normal(size=s.shape).astype(np.float32)), exp_dir / f"e{i}.npz")
    return sim_dir, exp_dir


def test_cli_train_translator_tiny_run_selects_and_exports(tmp_path):
    sim_dir, exp_dir = _write_domains(tmp_path, first_seed=20)
    argv = ["--sim", str(sim_dir), "--exp", str(exp_dir), "--out", str(tmp_path / "run"), "--steps", "4",
            "--batch-size", "1", "--crop", "32", "--lambda-cycle", "5", "10", "--search-steps", "2",
            "--holdout", "0.34", "--select-metric", "mmd", "--device", "cpu", "--no-progress",
            "--gen-channels", "8", "8", "8", "--res-blocks", "1", "--disc-channels", "8", "8", "8",
            "--checkpoint-every", "2", "--export", str(tmp_path / "exported.pt")]
    assert run_train_translator(_ns(configure_train_translator_parser, argv)) == 0
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 4 and state["finished"]
    assert len(state["selection"]["grid"]) == 2 and "chosen" in state["selection"]
    rec = state["recommended_strength"]
    assert set(rec) == {"forward", "backward"} and all(0.0 <= v <= 1.0 for v in rec.values())
    assert len(state["data"]["heldout_ids"]["exp"]) == 2
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert len(report["evaluation"]["forward_distance"]) == 11
    assert (tmp_path / "exported.md").exists()
    # an existing run is not overwritten without --resume; with it, a finished run just re-evaluates
    with pytest.raises(FileExistsError):
        run_train_translator(_ns(configure_train_translator_parser, argv))
    assert run_train_translator(_ns(configure_train_translator_parser, argv + ["--resume"])) == 0
    assert load_checkpoint(tmp_path / "run")["step"] == 4


class _FixedResidual(torch.nn.Module):
    """A stand-in generator whose residual is a fixed pattern (for the strength sweep)."""

    def __init__(self, pattern):
        super().__init__()
        self.register_buffer("pattern", torch.as_tensor(pattern))

    def forward(self, x):
        return self.pattern[..., : x.shape[-2], : x.shape[-1]].expand_as(x)


def test_strength_sweep_recommends_the_strength_that_matches_the_target_domain():
    from napari_afm_style.training.translator_selection import DomainDistance, evaluate_translator
    from napari_afm_style.training.translator_selection import grid_point_score as _score

    rng = np.random.default_rng(0)
    sim = _smooth_set(rng, 8, 10, 48)
    stripes = np.repeat(rng.normal(size=(10, 48, 1)), 48, axis=2).astype(np.float32)  # scan-line jumps
    exp = [a + 0.5 * stripes for a in _smooth_set(rng, 8, 10, 48)]
    model = CycleGAN(TINY10, seed=0)
    model.forward_gen = _FixedResidual(stripes)               # adds the full stripe pattern
    model.backward_gen = _FixedResidual(np.zeros_like(stripes))  # does nothing
    ev = evaluate_translator(model, sim, exp, DomainDistance("spectrum", sim, exp))
    assert ev["recommended_strength"]["forward"] == pytest.approx(0.5, abs=0.11)
    assert ev["remaining_gap"]["forward"] < 0.5
    assert ev["recommended_strength"]["backward"] == 0.0  # no change → no strength
    assert ev["remaining_gap"]["backward"] == pytest.approx(1.0)
    # F does not remove the stripes G adds: both cycles are off by exactly mean |stripes|
    assert ev["cycle_error"]["sim"] == pytest.approx(float(np.mean(np.abs(stripes))), rel=1e-5)
    assert ev["cycle_error"]["exp"] == pytest.approx(ev["cycle_error"]["sim"], rel=1e-5)
    assert 0 < ev["content_cycle_error"]["sim"] <= ev["cycle_error"]["sim"]
    # the selection rule puts a point above the content limit last
    good = {"content_cycle_error": {"sim": 0.05, "exp": 0.05}, "remaining_gap": {"forward": 0.6, "backward": 0.6}}
    bad = {"content_cycle_error": {"sim": 0.5, "exp": 0.05}, "remaining_gap": {"forward": 0.1, "backward": 0.1}}
    assert sorted([bad, good], key=lambda e: _score(e, 0.15))[0] is good


def test_cli_max_minutes_stops_with_a_checkpoint_and_resume_finishes(tmp_path):
    from napari_afm_style.io import write_stack

    rng = np.random.default_rng(1)
    for i in range(4):
        s = _stack(40 + i, shape=(10, 40, 40))
        write_stack(s, tmp_path / "sim" / f"s{i}.npz")
        write_stack(s.replace(data=s.data + 0.3 * rng.normal(size=s.shape).astype(np.float32)),
                    tmp_path / "exp" / f"e{i}.npz")
    argv = ["--sim", str(tmp_path / "sim"), "--exp", str(tmp_path / "exp"), "--out", str(tmp_path / "run"),
            "--steps", "3", "--batch-size", "1", "--crop", "32", "--lambda-cycle", "1", "--holdout", "0.5",
            "--select-metric", "spectrum", "--device", "cpu", "--no-progress", "--threads", "1",
            "--gen-channels", "8", "8", "8", "--res-blocks", "1", "--disc-channels", "8", "8", "8"]
    # a deadline already past when training starts: stop at once, but with a loadable checkpoint
    assert run_train_translator(_ns(configure_train_translator_parser, argv + ["--max-minutes", "1e-6"])) == 0
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 0 and not state["finished"]
    assert not (tmp_path / "run" / "report.json").exists()
    # another held-out split than the run's (here another --holdout): resuming is refused
    other = [a if a != "0.5" else "0.75" for a in argv]
    with pytest.raises(ValueError, match="held out other stacks"):
        run_train_translator(_ns(configure_train_translator_parser, other + ["--resume"]))
    assert run_train_translator(_ns(configure_train_translator_parser, argv + ["--resume"])) == 0
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 3 and state["finished"]
    assert state["selection"]["rule"] == "single grid point given"


def test_gaussian_lowpass_matches_scipy():
    from scipy import ndimage

    from napari_afm_style.models.cyclegan import gaussian_lowpass

    x = torch.randn(2, 3, 37, 41, generator=torch.Generator().manual_seed(0))
    y = gaussian_lowpass(x, 2.0).numpy()
    ref = ndimage.gaussian_filter(x.numpy(), (0, 0, 2.0, 2.0), mode="nearest", truncate=3.0)
    assert np.abs(y - ref).max() < 1e-5
    assert gaussian_lowpass(x, 0.0) is x


def test_low_pass_exp_cycle_ignores_noise_that_cannot_be_restored():
    """With the exp-cycle low-pass, a backward generator that removes pixel noise pays
    (almost) no cycle penalty for it; at full resolution it pays the noise amplitude."""
    from napari_afm_style.models.cyclegan import cycle_loss, gaussian_lowpass

    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    clean = torch.cos(2 * np.pi * xx / 16)[None, None].repeat(1, 2, 1, 1)
    exp = clean + 0.3 * torch.randn(clean.shape, generator=g)
    full = cycle_loss(exp, clean).item()
    low = cycle_loss(gaussian_lowpass(exp, 2.0), gaussian_lowpass(clean, 2.0)).item()
    assert full > 0.2 and low < 0.05


def test_frozen_forward_generator_stays_bit_identical(tmp_path):
    from napari_afm_style.translate import generator_state_dicts

    sim_dir, exp_dir = _write_domains(tmp_path, first_seed=40)
    common = ["--sim", str(sim_dir), "--exp", str(exp_dir), "--batch-size", "1", "--crop", "32",
              "--lambda-cycle", "1", "--holdout", "0.34", "--select-metric", "mmd", "--device", "cpu",
              "--no-progress", "--gen-channels", "8", "8", "8", "--res-blocks", "1",
              "--disc-channels", "8", "8", "8"]
    first = tmp_path / "first.pt"
    assert run_train_translator(_ns(configure_train_translator_parser, common + [
        "--out", str(tmp_path / "a"), "--steps", "3", "--export", str(first)])) == 0
    # --freeze-forward needs the trained forward generator
    with pytest.raises(ValueError, match="init-from"):
        run_train_translator(_ns(configure_train_translator_parser, common + [
            "--out", str(tmp_path / "x"), "--steps", "2", "--freeze-forward"]))
    second = tmp_path / "second.pt"
    assert run_train_translator(_ns(configure_train_translator_parser, common + [
        "--out", str(tmp_path / "b"), "--steps", "4", "--init-from", str(first), "--freeze-forward",
        "--exp-cycle-lowpass-A", "0.25", "--export", str(second)])) == 0
    f1, b1 = generator_state_dicts(torch.load(first, weights_only=True))
    f2, b2 = generator_state_dicts(torch.load(second, weights_only=True))
    assert all(torch.equal(f1[k], f2[k]) for k in f1)
    assert any(not torch.equal(b1[k], b2[k]) for k in b1)
    state = load_checkpoint(tmp_path / "b")
    assert state["train_config"]["freeze_forward"] and state["train_config"]["exp_cycle_sigma_px"] == 2.0
    assert state["data"]["init_from"] == str(first)
    assert "forward generator frozen" in second.with_suffix(".md").read_text()


def test_device_choice_is_checked_before_any_work():
    import torch

    from napari_afm_style._device import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="auto"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda:0")


def test_bad_api_arguments_fail_before_any_network_pass(tmp_path):
    from napari_afm_style import translate as tmod
    from napari_afm_style._sample_data import EXP_STACK, data_path
    from napari_afm_style.io import read_stack
    from napari_afm_style.predict import predict

    stack = read_stack(data_path(EXP_STACK))
    with pytest.raises(ValueError, match="direction"):
        tmod.translate(stack, ["forward"])
    with pytest.raises(ValueError, match="threshold"):
        predict(stack, threshold=1.5)
    blob = torch.load(tmod.default_translator_path(), weights_only=True)
    bad = tmp_path / "no_state.pt"
    torch.save({"format": "napari-afm-style predictor weights", "model_config": {}}, bad)
    from napari_afm_style.predict import load_model

    with pytest.raises(ValueError, match="no_state.pt"):
        load_model(bad)
    # the weights cache stays bounded however many files are opened
    from napari_afm_style.models.weights import CACHE

    for i in range(CACHE.maxsize + 3):
        copy = tmp_path / f"tr_{i}.pt"
        torch.save(blob, copy)
        tmod.load_translator(copy)
    assert len(CACHE) <= CACHE.maxsize
