"""Training learns, not only lowers a loss: a predictor trained from scratch on small
synthetic shards (O atoms as repulsive Δf spots at known depths) goes from finding no O at
all to finding them on held-out samples."""

import torch

from test_train_predictor import _cfg, write_shards

from napari_afm_style.train_predictor import train

torch.set_num_threads(1)


def test_a_predictor_trained_from_scratch_finds_held_out_o_atoms(tmp_path):
    shards = write_shards(tmp_path / "sim", 48, seed=3)
    history = train(_cfg(shards, tmp_path / "run", epochs=6, val_max_samples=16, seed=0))
    f1 = [h["val"]["O_f1"] for h in history]
    # measured 0.00 → 0.16–0.33 (seeds 0–2); an untrained or frozen network stays at 0
    assert f1[0] < 0.05
    assert max(f1) >= 0.15, f1
