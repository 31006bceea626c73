#!/usr/bin/env python
"""How the generator's structures and the theoretical (DFT) ones stack their water.

    python scripts/structure_layers.py --theory-dir ../shared/data/theory_structures [--n 12]

For each source (every generator kind, ``--n`` structures of 16×16 Å each; all theory
files) prints the O atoms per height band above the structure's lowest O, and the share of
O with another O stacked right on top (within 0.5 Å laterally, 2–3.2 Å higher: the geometry
of an AA-stacked ice bilayer, ``evaluation.stacked_under``). A model trained mostly on
one kind learns its stacking as a prior; this shows how far the kinds differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_afm_style.evaluation import STACKING_DZ_A, stacked_under
from napari_afm_style.generate import UPPER_MOLECULE_GAP_A
from napari_afm_style.io import read_atoms
from napari_afm_style.structures import generate_structure

BANDS_A = (0.0, 1.25, UPPER_MOLECULE_GAP_A, 4.0, 6.0)


def layer_stats(structures) -> dict:
    counts = np.zeros(len(BANDS_A) - 1, int)
    n_o = n_under = 0
    for atoms in structures:
        o = atoms.positions[atoms.numbers == 8]
        if len(o) == 0:
            continue
        counts += np.histogram(np.clip(o[:, 2] - o[:, 2].min(), 0, BANDS_A[-1] - 1e-6), bins=BANDS_A)[0]
        n_under += int(np.sum(stacked_under(o, o)))
        n_o += len(o)
    return {"n_O": n_o, "bands": counts, "share_under_an_O": n_under / max(n_o, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--theory-dir", type=Path, required=True)
    p.add_argument("--n", type=int, default=12, help="generated structures per kind")
    args = p.parse_args(argv)
    sources = {kind: [generate_structure(seed, kind=kind, size_A=(16.0, 16.0)) for seed in range(args.n)]
               for kind in ("bilayer", "bilayer_defects", "mixed", "cluster")}
    sources["theory"] = [read_atoms(f) for f in sorted(args.theory_dir.glob("*.xyz"))]
    labels = [f"{lo:g}–{hi:g}" for lo, hi in zip(BANDS_A[:-1], BANDS_A[1:])]
    print(f"{'source':16s} {'n':>4s} {'O':>6s}  " + "  ".join(f"{lab + ' Å':>10s}" for lab in labels)
          + "   O right under an O")
    for name, structures in sources.items():
        s = layer_stats(structures)
        shares = s["bands"] / max(s["n_O"], 1)
        print(f"{name:16s} {len(structures):4d} {s['n_O']:6d}  " + "  ".join(f"{v:10.2f}" for v in shares)
              + f"   {s['share_under_an_O']:18.2f}")
    print(f"(bands: O height above the structure's lowest O; the last band holds everything above "
          f"{BANDS_A[-2]:g} Å; molecules above {UPPER_MOLECULE_GAP_A} Å are what --theory-remove-upper thins; "
          f"stacked: {STACKING_DZ_A[0]:g}–{STACKING_DZ_A[1]:g} Å higher, within 0.5 Å laterally)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
