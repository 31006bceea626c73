"""Which label-free criterion picks good style-translation settings?

For each setting (a forward translator, a strength or strength range, and the structure
model trained with it, in the ``style`` or ``hybrid`` regime) this prints four criteria computed on
UNLABELLED scans (napari_afm_style.translation_criteria) and, on labelled
experiment-style scans, the top-layer O F1 the setting's model reaches; then the Spearman
rank correlation of each criterion with that F1 over the settings (signs flipped so that
+1 means "the criterion ranks settings exactly as F1 does").

    python benchmarks/bench_translation_criteria.py --exp ../shared/data/experiment_like \\
        --labelled ../shared/data/experiment_like_labelled --sim VAL_CLOSE \\
        --setting old_s025 shipped 0.25 0.25 RUN1/predictor_style_s025.pt \\
        --setting c2_s0to1 translator_c2.pt 0 1 RUN2/predictor_style_c2.pt ...  [--json out.json]

A TRANSLATOR of ``-`` skips the style distance for that setting (a model trained with several
translators). The labelled scans are used only to judge the criteria, never to choose for a user.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp", required=True, help="unlabelled scans (the user's own)")
    p.add_argument("--labelled", required=True, help="labelled experiment-style scans (judging only)")
    p.add_argument("--sim", required=True, help="simulated shards to translate for the style distance")
    p.add_argument("--setting", nargs=5, action="append", required=True,
                   metavar=("NAME", "TRANSLATOR", "SMIN", "SMAX", "MODEL"),
                   help="translator ('shipped', a .pt or '-'), strength range, model trained with it")
    p.add_argument("--max-sims", type=int, default=64)
    p.add_argument("--max-scans", type=int, default=None, help="unlabelled scans for the order criterion")
    p.add_argument("--resim-scans", type=int, default=16, help="unlabelled scans re-simulated per setting")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import torch

    from napari_afm_style.dataset import ShardSet
    from napari_afm_style.experiment import read_scans
    from napari_afm_style.labelled_scans import read_labelled_scans, score_labelled_scans
    from napari_afm_style.predict import load_model, predict
    from napari_afm_style.translation_criteria import (order_agreement, prediction_entropy,
                                                       resimulation_agreement, spearman, style_distance)

    torch.set_num_threads(args.threads)
    _, scans = read_scans(args.exp, args.max_scans)
    labelled = read_labelled_scans(args.labelled)
    shards = ShardSet(args.sim)
    sims = [shards[i].stack() for i in range(min(args.max_sims, len(shards)))]
    rows = []
    for name, translator, smin, smax, model in args.setting:
        t0 = time.time()
        tr = None if translator == "shipped" else translator
        m = load_model(model)
        preds = [predict(s, model=m) for s in scans]
        ent = prediction_entropy(m, scans)
        row = {"setting": name, "translator": translator, "strength": [float(smin), float(smax)], "model": model,
               "FID_style": (float("nan") if translator == "-"
                             else style_distance(tr, (float(smin), float(smax)), sims, scans)),
               "entropy": ent["entropy"], "mean_confidence": ent["mean_confidence"],
               **order_agreement(m, scans, predictions=preds),
               "resim_NCC": resimulation_agreement(m, scans[: args.resim_scans],
                                                   predictions=preds[: args.resim_scans])["ncc"]}
        lab = score_labelled_scans(m, labelled)
        row.update(labelled_F1=lab["mean_f1"], labelled_F1_ci95=lab["ci95"], seconds=time.time() - t0)
        rows.append(row)
        print(f"{name:12s} FID {row['FID_style']:7.2f}  entropy {row['entropy']:.4f}  W1(S_g) {row['W1_S_g']:.4f}  resim NCC "
              f"{row['resim_NCC']:.3f}  O/scan {row['O_per_scan']:.1f}  labelled F1 {row['labelled_F1']:.3f} "
              f"[{lab['ci95'][0]:.3f}, {lab['ci95'][1]:.3f}]", flush=True)
    f1 = [r["labelled_F1"] for r in rows]
    def rho_of(key, sign):  # over the settings where the criterion exists
        ok = [i for i, r in enumerate(rows) if np.isfinite(r[key])]
        return spearman([sign * rows[i][key] for i in ok], [f1[i] for i in ok]), len(ok)

    rho = {"FID_style": rho_of("FID_style", -1), "entropy": rho_of("entropy", -1),
           "W1_S_g": rho_of("W1_S_g", -1), "resim_NCC": rho_of("resim_NCC", +1)}
    print("\n| setting | translator | strength | FID (style) | O-map entropy | W1(S_g) to theory | re-sim NCC "
          "| labelled O F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['translator'].split('/')[-1]} | {r['strength'][0]:g}–{r['strength'][1]:g} | "
              f"{r['FID_style']:.1f} | {r['entropy']:.4f} | {r['W1_S_g']:.4f} | {r['resim_NCC']:.3f} | "
              f"{r['labelled_F1']:.3f} |")
    print("| **Spearman ρ with F1** (settings) | | | " + " | ".join(f"**{v:+.2f}** ({n})" for v, n in rho.values())
          + " | |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "spearman": rho}, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
