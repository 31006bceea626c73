"""``afm-style calibrate-predictor``: a predictor's threshold and averaged views, chosen on
validation shards."""

from __future__ import annotations

from ..training.evaluation import calibrate_inference
from ._options import add_device_option, add_progress_option, add_seed_option

__all__ = ["configure", "run"]


def configure(p) -> None:
    p.add_argument("model", help="predictor weights file (.pt export) to calibrate")
    p.add_argument("--data", required=True,
                   help="labelled VALIDATION shards drawn like the training data (not the benchmark's held-out set)")
    p.add_argument("--views", type=int, nargs="+", default=[1, 8], choices=(1, 2, 4, 8),
                   help="numbers of averaged mirrored/rotated views to calibrate")
    p.add_argument("--max-samples", type=int, default=None, help="use at most this many validation samples (default: all)")
    p.add_argument("--eval-z-min", type=float, default=None,
                   help="score atoms down to this depth (Å below the closest tip height; default: the model's range)")
    p.add_argument("--write", action="store_true",
                   help="store the result in the weights file (predict() then uses it by default)")
    p.add_argument("--perturb", action="store_true",
                   help="apply seeded handcrafted perturbations first (for the handcrafted regime)")
    add_seed_option(p, what="sample subset and perturbations")
    add_device_option(p, "the predictor")
    add_progress_option(p)


def run(args) -> int:
    import json

    from ..predict import write_inference_calibration

    res = calibrate_inference(args.model, args.data, views=tuple(args.views), max_samples=args.max_samples,
                              eval_z_min_A=args.eval_z_min, device=args.device, progress=not args.no_progress,
                              perturb=args.perturb, seed=args.seed)
    print(f"calibration of {args.model} on {res['n_samples']} samples of {args.data} "
          f"({res['element']} atoms down to {res['eval_z_min_A']:.3f} Å):")
    for v, r in res["views"].items():
        print(f"  {v} view(s): threshold {r['threshold']:.2f}  F1 {r['f1']:.3f}  "
              f"(precision {r['precision']:.3f}, recall {r['recall']:.3f})")
    print(f"recommended: {res['recommended_views']} view(s)")
    if args.write:
        write_inference_calibration(args.model, res)
        print(f"wrote the calibration into {args.model}")
    else:
        print(json.dumps({"recommended_views": res["recommended_views"],
                          "thresholds": {v: r["threshold"] for v, r in res["views"].items()}}))
    return 0
