"""Re-simulation agreement of each model's prediction with the bundled experiment-like sample:
the demo's path (optional backward translation → predict → confident atoms, tip placed from
them → ppafm re-simulation) and the closest-slice NCC between re-simulation and scan.

    python benchmarks/bench_resim_agreement.py [--models handcrafted hybrid ...] [--strengths 0 1]

A label-free check of the whole predicted structure (H included), which the labelled O F1
does not see; the GUI test asks for NCC ≥ 0.7 with the default model.
"""

from __future__ import annotations

import argparse
import tempfile


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["handcrafted", "hybrid", "style", "pure"])
    p.add_argument("--strengths", nargs="+", type=float, default=[0.0, 1.0])
    args = p.parse_args(argv)

    from napari_afm_style.demo import run_demo

    print(f"{'model':14s} {'backward':>8s} {'O':>4s} {'H':>4s} {'left out':>8s} {'NCC closest':>12s}")
    for model in args.models:
        for s in args.strengths:
            with tempfile.TemporaryDirectory() as d:
                r = run_demo(d, model=model, strength=s)
            a = r["atoms_found"]
            print(f"{model:14s} {s:8g} {a.get('O', 0):4d} {a.get('H', 0):4d} {r['resim_atoms_left_out']:8d} "
                  f"{r['resim_ncc_closest']:12.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
