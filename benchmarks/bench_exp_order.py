"""Structures predicted on unlabelled scans against theory, with and without backward
translation ("cleaning the scan" before the structure model sees it).

For every model and for the raw and the backward-translated scans: O atoms per scan, the
number of O with four O neighbours within 3.5 Å (the centres S_k/S_g are defined on), and
the Wasserstein-1 distances of the pooled S_k and S_g to the theoretical distribution, with a
95 % bootstrap interval over scans and the paired interval of W(backward) − W(raw).

    python benchmarks/bench_exp_order.py --exp ../shared/data/experiment_like
        [--models pure handcrafted style hybrid] [--strength recommended] [--max-scans N]
        [--raw-only] [--vs pure] [--count-vs handcrafted]

``--vs M`` adds, on the raw scans, the paired interval of W1(S_g)(model) − W1(S_g)(M) (negative:
closer to theory than M); ``--count-vs M`` the ratio of O found per scan to M's.
"""

from __future__ import annotations

import argparse

from napari_afm_style.experiment import bootstrap_order_distances, order_on_scans, read_scans
from napari_afm_style.order import distribution_distances
from napari_afm_style.predict import list_models, load_model, predict
from napari_afm_style.translate import prepare_translation


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", required=True, help="folder of scans (.npz, .sxm, ...)")
    p.add_argument("--models", nargs="+", default=None, help="default: every shipped model")
    p.add_argument("--strength", default="recommended", help="backward strength, or 'recommended'")
    p.add_argument("--max-scans", type=int, default=None)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--raw-only", action="store_true", help="skip the backward-translated scans")
    p.add_argument("--vs", default=None, help="model to pair W1(S_g) with, on the raw scans")
    p.add_argument("--count-vs", default=None, help="model to compare O per scan with, on the raw scans")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    _, raw = read_scans(args.exp, args.max_scans)
    strength = args.strength if args.strength == "recommended" else float(args.strength)
    cleaned = [] if args.raw_only else [prepare_translation(s, "backward").at(strength) for s in raw]
    n = len(raw)
    anchors = {}
    for m in {args.vs, args.count_vs} - {None}:
        anchors[m] = order_on_scans([predict(s, model=load_model(m)) for s in raw])
    print(f"{n} scans from {args.exp}; backward strength {args.strength}")
    print(f"{'model':12s} {'input':9s} {'O/scan':>7s} {'centres':>8s} {'W1(S_k)':>8s} {'W1(S_g) [95 %]':>24s} "
          f"{'Δ W1(S_g) backward − raw [95 %]':>32s}")
    for name in args.models or list_models():
        model = load_model(name)
        orders = {}
        for label, stacks in (("raw", raw),) + ((("backward", cleaned),) if cleaned else ()):
            o = order_on_scans([predict(s, model=model) for s in stacks])
            orders[label] = o
            if len(o["S_k"]) == 0:
                print(f"{name:12s} {label:9s} {o['n_O'].mean():7.1f} {0:8d}  (no centres)")
                continue
            d = distribution_distances(o["S_k"], o["S_g"])
            b = bootstrap_order_distances(o, n, n_boot=args.bootstrap,
                                          baseline=orders["raw"] if label == "backward" else None)
            ci = b["wasserstein_S_g_ci95"]
            delta = (f"[{b['delta_vs_pure_S_g_ci95'][0]:+.3f}, {b['delta_vs_pure_S_g_ci95'][1]:+.3f}]"
                     if label == "backward" else "")
            print(f"{name:12s} {label:9s} {o['n_O'].mean():7.1f} {len(o['S_k']):8d} {d['wasserstein_S_k']:8.4f} "
                  f"{d['wasserstein_S_g']:8.3f} [{ci[0]:.3f}, {ci[1]:.3f}] {delta:>32s}", flush=True)
            if label == "raw" and args.count_vs:
                ratio = o["n_O"].mean() / anchors[args.count_vs]["n_O"].mean()
                print(f"{'':22s} O per scan / {args.count_vs}'s: {ratio:.3f}")
            if label == "raw" and args.vs:
                pv = bootstrap_order_distances(o, n, n_boot=args.bootstrap, baseline=anchors[args.vs])
                lo, hi = pv["delta_vs_pure_S_g_ci95"]
                print(f"{'':22s} W1(S_g) − {args.vs}'s, paired 95 %: [{lo:+.3f}, {hi:+.3f}]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
