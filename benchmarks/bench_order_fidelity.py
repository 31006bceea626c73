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

import numpy as np
from scipy.stats import wasserstein_distance

from napari_afm_style.dataset import ShardSet
from napari_afm_style.evaluation import _in_window_frame, _labelled_stacks
from napari_afm_style.experiment import order_on_scans
from napari_afm_style.order import DEFAULT_CUTOFF_A, reference_distribution
from napari_afm_style.predict import list_models, load_model, predict


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
    _, ref_g = reference_distribution("theory")
    print(f"{n} labelled stacks from {args.data}; O centres with 4 O neighbours within {DEFAULT_CUTOFF_A} Å")
    print(f"{'model':28s} {'centres true':>12s} {'pred':>6s} {'W1 S_g pred-true':>17s} {'W1 S_k pred-true':>17s} "
          f"{'W1 S_g true-theory':>19s} {'W1 S_g pred-theory':>19s}")
    for name in models:
        loaded = load_model(name)
        cfg = loaded.config
        truths, preds = [], []
        # truth down to the model's deepest bin (no tolerance margin: both sides are cut alike)
        for _, stack, numbers, truth, _ in _labelled_stacks(shards, n, cfg, cfg.z_min_A, 0.0):
            truths.append(truth[numbers == 8])
            atoms = predict(stack, model=loaded)
            preds.append(_in_window_frame(atoms, stack)[np.array(atoms.get_chemical_symbols()) == "O"])
        true_order, pred_order = order_on_scans(truths), order_on_scans(preds)
        tk, tg, pk, pg = true_order["S_k"], true_order["S_g"], pred_order["S_k"], pred_order["S_g"]
        w = (lambda a, b: wasserstein_distance(a, b) if len(a) and len(b) else float("nan"))
        print(f"{str(name)[-28:]:28s} {len(tg):12d} {len(pg):6d} {w(pg, tg):17.3f} {w(pk, tk):17.4f} "
              f"{w(tg, ref_g):19.3f} {w(pg, ref_g):19.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
