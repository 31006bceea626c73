"""Do predicted structures have the tetrahedral order of the true ones?

On labelled held-out shards, every model predicts each stack (the user-facing ``predict``);
the O atoms of prediction and truth (inside the scan window and the model's depth range) go
through the same S_k/S_g computation, pooled over stacks. Printed per model: the number of
S_k/S_g centres (O with four O neighbours within 3.5 Å) in truth and prediction, and the
Wasserstein-1 distance of the predicted S_g (and S_k) distribution to the truth's and to the
shipped theoretical reference. This is the control for ``bench_exp_order.py``: there the
truth is unknown and only "distance to theory" can be measured.

    python benchmarks/bench_order_fidelity.py --data HELDOUT_DIR [--models pure handcrafted] [--max-samples N]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from scipy.stats import wasserstein_distance

from napari_afm_style.dataset import ShardSet
from napari_afm_style.evaluation import _in_window_frame, _window_truth
from napari_afm_style.order import DEFAULT_CUTOFF_A, reference_distribution, tetrahedral_order
from napari_afm_style.predict import list_models, load_model, predict


def _pooled_order(position_sets):
    sk, sg = [np.zeros(0)], [np.zeros(0)]
    for pos in position_sets:
        if len(pos) >= 5:
            _, k, g = tetrahedral_order(pos, DEFAULT_CUTOFF_A)
            sk.append(k)
            sg.append(g)
    return np.concatenate(sk), np.concatenate(sg)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="labelled held-out shard folder")
    p.add_argument("--models", nargs="+", default=None, help="names or weight files (default: pure, handcrafted)")
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    shards = ShardSet(args.data)
    n = len(shards) if args.max_samples is None else min(args.max_samples, len(shards))
    models = args.models or [m for m in ("pure", "handcrafted") if m in list_models()]
    ref_k, ref_g = reference_distribution("theory")
    print(f"{n} labelled stacks from {args.data}; O centres with 4 O neighbours within {DEFAULT_CUTOFF_A} Å")
    print(f"{'model':28s} {'centres true':>12s} {'pred':>6s} {'W1 S_g pred-true':>17s} {'W1 S_k pred-true':>17s} "
          f"{'W1 S_g true-theory':>19s} {'W1 S_g pred-theory':>19s}")
    for name in models:
        loaded = load_model(name)
        truth_cfg = dataclasses.replace(loaded.config)
        truths, preds = [], []
        for i in range(n):
            sample = shards[i]
            stack = sample.stack()
            numbers, truth, _ = _window_truth(sample, truth_cfg)
            truths.append(truth[numbers == 8])
            atoms = predict(stack, model=loaded)
            preds.append(_in_window_frame(atoms, stack)[np.array(atoms.get_chemical_symbols()) == "O"])
        tk, tg = _pooled_order(truths)
        pk, pg = _pooled_order(preds)
        w = (lambda a, b: wasserstein_distance(a, b) if len(a) and len(b) else float("nan"))
        print(f"{str(name)[-28:]:28s} {len(tg):12d} {len(pg):6d} {w(pg, tg):17.3f} {w(pk, tk):17.4f} "
              f"{w(tg, ref_g):19.3f} {w(pg, ref_g):19.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
