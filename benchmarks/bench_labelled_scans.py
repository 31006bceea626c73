"""Top-layer O F1 of structure models on labelled experiment-style scans, with bootstrap
intervals and paired intervals of the difference to the first two models given.

    python benchmarks/bench_labelled_scans.py --labelled ../shared/data/experiment_like_labelled \\
        --models pure handcrafted style hybrid [PATH.pt ...] [--backward STRENGTH]

Validation and model selection only (napari_afm_style.labelled_scans): never train on these scans.
"""

from __future__ import annotations

import argparse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labelled", required=True)
    p.add_argument("--models", nargs="+", default=["pure", "handcrafted", "style", "hybrid"])
    p.add_argument("--backward", type=float, default=None,
                   help="translate every scan backward at this strength first (shipped translator)")
    p.add_argument("--bootstrap", type=int, default=2000)
    args = p.parse_args(argv)
    from napari_afm_style.experiment import paired_difference_ci
    from napari_afm_style.labelled_scans import read_labelled_scans, score_labelled_scans
    from napari_afm_style.translate import prepare_translation

    scans = read_labelled_scans(args.labelled)
    tf = None
    if args.backward is not None:
        tf = lambda st: prepare_translation(st, "backward").at(args.backward)  # noqa: E731
    res = {m: score_labelled_scans(m, scans, transform=tf, bootstrap=args.bootstrap) for m in args.models}
    base = args.models[:2]
    print(f"{len(scans)} labelled scans" + (f", backward translation at {args.backward}" if tf else ""))
    print("| model | O F1 [95 %] | " + " | ".join(f"Δ vs {b} [paired 95 %]" for b in base) + " |")
    print("|---|---|" + "---|" * len(base))
    for m, r in res.items():
        cells = []
        for b in base:
            if b == m:
                cells.append("—")
            else:
                lo, hi = paired_difference_ci(r["per_scan"], res[b]["per_scan"], args.bootstrap)
                cells.append(f"[{lo:+.3f}, {hi:+.3f}]")
        print(f"| {m} | {r['mean_f1']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
