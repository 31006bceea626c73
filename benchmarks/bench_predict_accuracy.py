"""Accuracy of a structure-discovery model on held-out simulated shards.

For every sample the whole stack goes through ``predict()`` (exactly the user's path:
canonicalisation, network, extraction) and the predicted atoms are matched one-to-one
(Hungarian) with the true visible atoms: O and H inside the scan window and no deeper
than the model's lowest depth bin. Tolerances: 0.5 Å lateral and 0.5 Å in height.

    python benchmarks/bench_predict_accuracy.py --data HELDOUT_DIR --model pure [--perturb]
        [--strength 1.0] [--threshold T] [--max-samples N]

``--perturb`` applies ``napari_afm_style.perturb.random_perturbation`` to every stack
first (a robustness check against experiment-like artefacts).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase.data import atomic_numbers

from napari_afm_style import AFMStack
from napari_afm_style.dataset import ShardSet, prepare_sample, truth_in_window
from napari_afm_style.predict import load_model, match_atoms, pool_matches, predict


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="held-out shard folder")
    p.add_argument("--model", default="pure", help="model name or weights/checkpoint path")
    p.add_argument("--threshold", type=float, default=None, help="default: the model's")
    p.add_argument("--perturb", action="store_true", help="apply random handcrafted perturbations")
    p.add_argument("--strength", type=float, default=1.0, help="perturbation strength (with --perturb)")
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    model = load_model(args.model, args.device)
    cfg = model.config
    shards = ShardSet(args.data)
    n = len(shards) if args.max_samples is None else min(args.max_samples, len(shards))
    rng = np.random.default_rng(args.seed)
    results = {el: [] for el in cfg.elements}
    t0 = time.perf_counter()
    for i in range(n):
        sample = shards[i]
        stack = sample.stack()
        if args.perturb:
            from napari_afm_style.perturb import random_perturbation

            df = random_perturbation(stack.data, rng, args.strength, stack.pixel_size_A)
            df = np.asarray(df[0] if isinstance(df, tuple) else df, np.float32)
            stack = AFMStack(df, stack.heights_A, stack.pixel_size_A, stack.origin_A, stack.f0_Hz,
                             stack.k_N_per_m, stack.amplitude_A)
        atoms = predict(stack, model=model, threshold=args.threshold, device=args.device)
        # truth and prediction in the window frame: Å from pixel [0, 0], z below the closest tip height
        prep = prepare_sample(sample, cfg)
        numbers, truth = truth_in_window(prep.numbers, prep.atoms_px, prep.data.shape[-2:], prep.pixel_size_A)
        pred = atoms.positions - [stack.origin_A[0], stack.origin_A[1], stack.heights_A[-1]]
        symbols = np.array(atoms.get_chemical_symbols())
        for el in cfg.elements:
            results[el].append(match_atoms(pred[symbols == el], truth[numbers == atomic_numbers[el]]))
    dt = time.perf_counter() - t0
    threshold = args.threshold if args.threshold is not None else model.default_threshold
    print(f"model {model.name!r} on {n} samples of {args.data}"
          + (f" (perturbed, strength {args.strength})" if args.perturb else "")
          + f"; threshold {threshold:.2f}; tolerance 0.5 Å lateral, 0.5 Å height")
    for el in cfg.elements:
        s = pool_matches(results[el])
        print(f"{el}: precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}  "
              f"RMSE {s['rmse_A']:.3f} Å  ({s['n_matched']} matched / {s['n_pred']} predicted / "
              f"{s['n_true']} true)")
    print(f"{dt / max(n, 1):.3f} s per sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
