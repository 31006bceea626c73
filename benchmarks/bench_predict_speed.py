"""Inference speed of the structure-discovery model on a 10 × 128 × 128 stack.

Prints the time of ``predict()`` (canonicalisation, normalisation, network, sigmoid,
peak search and refinement, Atoms construction; the model is loaded and cached first),
the time of the plain network forward pass on the same input measured in the same run,
their ratio, and the time of re-thresholding cached maps (the GUI slider).

    python benchmarks/bench_predict_speed.py [--model pure|PATH] [--repeats 20] [--threads N]

Without a shipped/trained model a randomly initialised one of the default configuration
is timed (same network cost; its near-empty maps make extraction cheaper than for a
trained model, so the extraction of ~120 rendered atoms is timed separately too).
"""

from __future__ import annotations

import argparse
import tempfile
import sys
from pathlib import Path

import numpy as np
import torch

from napari_afm_style import AFMStack
from napari_afm_style.dataset import render_targets
from napari_afm_style.models.predictor import AtomPredictor, PredictorConfig
from napari_afm_style.predict import PredictionMaps, list_models, load_model, predict, save_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model name or path (default: 'pure' if shipped, else random)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model or ("pure" if "pure" in list_models() else None)
    tmp = None
    if model is None:
        tmp = tempfile.TemporaryDirectory()
        torch.manual_seed(0)
        cfg = PredictorConfig()
        model = save_weights(AtomPredictor(cfg), cfg, Path(tmp.name) / "random.pt")
        print("no shipped model: timing a randomly initialised default-configuration model")
    loaded = load_model(model)
    cfg = loaded.config
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] * 0.125
    data = np.stack([-3 * np.cos(xx * 1.7 + i * 0.05) * np.cos(yy * 1.3) + rng.normal(0, 0.2, xx.shape)
                     for i in range(10)]).astype(np.float32)
    stack = AFMStack(data, 12 + 0.1 * np.arange(9, -1, -1), 0.125, (0, 0))

    t_predict = median_time(lambda: predict(stack, model=loaded), args.repeats)
    t_views = {n: median_time(lambda n=n: predict(stack, model=loaded, test_time_augmentation=n), args.repeats)
               for n in (1, 8)}
    x = torch.from_numpy(data[None].copy())

    def forward():
        with torch.inference_mode():
            loaded.net(x)

    t_forward = median_time(forward, args.repeats)

    # extraction cost on maps with a realistic number of atoms (rendered targets)
    n_o = 40
    o = np.column_stack([rng.uniform(4, 124, n_o), rng.uniform(4, 124, n_o), rng.uniform(-5, -2.5, n_o)])
    h = np.concatenate([o + [8, 0, 0.3], o + [-4, 7, 0.3]])
    maps = render_targets(np.array([8] * n_o + [1] * 2 * n_o), np.concatenate([o, h]), (128, 128), cfg)

    def extract():
        PredictionMaps(maps, cfg.elements, cfg.z_centres_A, 0.125, np.zeros(2), 0.0,
                       cfg.min_separation_A).atoms(0.5)

    t_extract = median_time(extract, args.repeats)
    pm = PredictionMaps(maps, cfg.elements, cfg.z_centres_A, 0.125, np.zeros(2), 0.0, cfg.min_separation_A)
    pm.atoms(0.5)
    t_rethreshold = median_time(lambda: pm.atoms(0.3), args.repeats)

    print(f"model: {loaded.name} ({sum(p.numel() for p in loaded.net.parameters())} parameters, "
          f"base {cfg.base_channels}, depth {cfg.depth}); torch threads: {torch.get_num_threads()}")
    print(f"predict() on a 10x128x128 stack: {1e3 * t_predict:.1f} ms (median of {args.repeats})")
    print(f"plain forward pass:              {1e3 * t_forward:.1f} ms")
    print(f"ratio predict / forward:         {t_predict / t_forward:.2f}")
    for n, t in t_views.items():
        print(f"predict() with {n} view(s) averaged: {1e3 * t:.1f} ms (ratio to forward {t / t_forward:.2f})")
    print(f"extraction of {3 * n_o} atoms from maps:  {1e3 * t_extract:.1f} ms; re-threshold: "
          f"{1e3 * t_rethreshold:.2f} ms")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
