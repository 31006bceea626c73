"""Where the labelled experiment-style scans' O F1 is lost: one rigid shift per scan of
the image against its atoms, or the rest.

    python benchmarks/bench_labelled_error_budget.py --labelled ../shared/data/experiment_like_labelled \\
        --models pure handcrafted hybrid [PATH.pt ...]

For every model: mean top-layer O F1 as predicted; the spread of each scan's mean lateral
offset of predicted from true O (``rigid_offset_A``); the F1 after removing that offset
scan by scan (a ceiling that needs the true atoms, not a method); and how far the models'
offsets agree (correlation with the first model's, per axis). Offsets that every model
shares, whatever its training, are in the scans, not in a model. Validation only: nothing
here trains or tunes on these scans.
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labelled", required=True)
    p.add_argument("--models", nargs="+", default=["pure", "handcrafted", "hybrid"])
    args = p.parse_args(argv)
    from napari_afm_style.labelled_scans import read_labelled_scans, rigid_offset_A, top_layer_f1
    from napari_afm_style.predict import load_model, predict

    scans = read_labelled_scans(args.labelled)
    out = {}
    for name in args.models:
        model = load_model(name)
        f1, f1_shifted, offsets = [], [], []
        for scan in scans:
            atoms = predict(scan.stack, model=model)
            oxygen = atoms.positions[atoms.numbers == 8]
            f1.append(top_layer_f1(oxygen, scan.oxygen_A)["f1"])
            shift = rigid_offset_A(oxygen, scan.oxygen_A)
            offsets.append(shift if shift is not None else np.full(2, np.nan))
            moved = oxygen.copy()
            if shift is not None:
                moved[:, :2] -= shift
            f1_shifted.append(top_layer_f1(moved, scan.oxygen_A)["f1"])
        out[name] = {"f1": float(np.mean(f1)), "f1_without_offset": float(np.mean(f1_shifted)),
                     "offsets_A": np.array(offsets)}
    first = out[args.models[0]]["offsets_A"]
    print(f"{len(scans)} labelled scans")
    print("| model | O F1 | per-scan offset std x / y (Å) | largest | F1 without each scan's offset | "
          f"offset correlation with {args.models[0]} x / y |")
    print("|---|---|---|---|---|---|")
    for name, r in out.items():
        o = r["offsets_A"]
        ok = ~np.isnan(o).any(1) & ~np.isnan(first).any(1)
        corr = [np.corrcoef(o[ok, k], first[ok, k])[0, 1] for k in (0, 1)]
        print(f"| {name} | {r['f1']:.3f} | {np.nanstd(o[:, 0]):.2f} / {np.nanstd(o[:, 1]):.2f} | "
              f"{np.nanmax(np.hypot(o[:, 0], o[:, 1])):.2f} | {r['f1_without_offset']:.3f} | "
              f"{corr[0]:+.2f} / {corr[1]:+.2f} |")
    return out


if __name__ == "__main__":
    main()
