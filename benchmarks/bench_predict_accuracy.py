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

from napari_afm_style.evaluation import STACKING_DZ_A, accuracy_on_shards
from napari_afm_style.predict import load_model


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
    p.add_argument("--eval-z-min", type=float, default=None,
                   help="score atoms down to this depth (Å relative to the closest tip height); "
                        "default: the model's deepest bin. -6.125 is the range of the first shipped models")
    p.add_argument("--breakdown", action="store_true",
                   help="also O scores per structure kind, recall per site (open, edge, covered) and "
                        "per depth below the topmost atom")
    p.add_argument("--tta", type=int, default=None, choices=(1, 2, 4, 8),
                   help="mirrored/rotated views averaged per window (default: predict's default)")
    args = p.parse_args(argv)

    model = load_model(args.model, args.device)
    res = accuracy_on_shards(model, args.data, perturb=args.perturb, strength=args.strength, seed=args.seed,
                             max_samples=args.max_samples, threshold=args.threshold, device=args.device,
                             breakdown=args.breakdown, eval_z_min_A=args.eval_z_min,
                             test_time_augmentation=args.tta)
    print(f"model {model.name!r} on {res['n_samples']} samples of {args.data}"
          + (f" (perturbed, strength {args.strength})" if args.perturb else "")
          + f"; threshold {res['threshold']:.2f}; tolerance 0.5 Å lateral, 0.5 Å height; "
          f"atoms down to {res['eval_z_min_A']:.3f} Å below the closest tip height; "
          f"{res['test_time_augmentation']} view(s) averaged")
    for el, s in res["elements"].items():
        print(f"{el}: precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}  "
              f"RMSE {s['rmse_A']:.3f} Å  ({s['n_matched']} matched / {s['n_pred']} predicted / "
              f"{s['n_true']} true)")
    if args.breakdown:
        b = res["breakdown"]
        for kind, s in b["by_kind"].items():
            print(f"  {b['element']} in {kind} ({s['n_samples']} samples): precision {s['precision']:.3f}  "
                  f"recall {s['recall']:.3f}  F1 {s['f1']:.3f}")
        for site, r in b["recall_by_site"].items():
            print(f"  {b['element']} recall, {site} sites: {r['recall']:.3f} ({r['n_found']} / {r['n_true']})")
        m = b["missed"]
        print(f"  {b['element']} missed: {m['n_missed']}, of which {m['n_with_prediction_above_or_below']} under or "
              f"over a prediction (wrong height), the rest with no prediction within the lateral tolerance")
        f = b["false"]
        lo, hi = STACKING_DZ_A
        print(f"  {b['element']} wrong: {f['n_false']}, of which {f['n_under_a_true_atom']} right under a true "
              f"atom ({lo:g}–{hi:g} Å lower: a stacked partner that is not there)")
        for depth, r in b["recall_by_depth"].items():
            print(f"  {b['element']} recall, {depth} Å below the topmost atom: {r['recall']:.3f} "
                  f"({r['n_found']} / {r['n_true']})")
        for depth, r in b["recall_by_tip_depth"].items():
            print(f"  {b['element']} recall, {depth} Å below the closest tip height: {r['recall']:.3f} "
                  f"({r['n_found']} / {r['n_true']})")
        for kind, bins in b["recall_by_tip_depth_by_kind"].items():
            print(f"  {b['element']} recall in {kind} by depth below the closest tip height: "
                  + ", ".join(f"{d} Å {r['recall']:.2f} ({r['n_found']}/{r['n_true']})" for d, r in bins.items()))
        print(f"  {b['element']} F1 with the floor at (Å below the closest tip height): "
              + ", ".join(f"{f} {r['f1']:.3f} ({r['n_true']} true)" for f, r in b["f1_by_floor"].items()))
        for kind, floors in b["f1_by_floor_by_kind"].items():
            print(f"  {b['element']} F1 in {kind} with the floor at: "
                  + ", ".join(f"{f} {r['f1']:.3f}" for f, r in floors.items()))
    print(f"{res['seconds_per_sample']:.3f} s per sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
