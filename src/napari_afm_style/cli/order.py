"""``afm-style order``: the tetrahedral order of a geometry and its distances to a reference."""

from __future__ import annotations

import argparse
import logging
import math
import warnings
from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from ..order import (
    DEFAULT_CUTOFF_A,
    order_distances,
    oxygen_positions_of,
    reference_names,
    tetrahedral_order_report,
    write_order_csv,
)

from ._options import int_at_least, positive_float

__all__ = ["configure", "run"]

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    """Arguments of ``afm-style order``."""
    p.add_argument("file", help="geometry (.xyz, extended XYZ or any ASE format); its O atoms are used")
    p.add_argument("--reference", default="theory",
                   help="shipped reference distribution (theory, theory_static, generator) or a geometry file "
                        "(default: theory)")
    p.add_argument("--cutoff", type=positive_float, default=DEFAULT_CUTOFF_A, help="O–O neighbour cutoff in Å (default 3.5)")
    p.add_argument("--csv", metavar="OUT.csv", help="write per-centre S_k, S_g and the distances to this CSV")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsampling for the 2-D distances (default 0)")
    p.add_argument("--max-points", type=int_at_least(10), default=1000,
                   help="largest sample of (S_k, S_g) points for the 2-D MMD (default 1000; the EMD has its own "
                        "limit, stated in the output)")


def _fmt(mean: float, std: float) -> str:
    return "n/a" if not math.isfinite(mean) else f"{mean:.5f} ± {std:.5f}"


def run(args) -> int:
    """``afm-style order``: print the tetrahedral order of a geometry and its distances."""
    from ..io import read_atoms

    atoms = read_atoms(args.file)
    reference = args.reference
    if reference not in reference_names():
        reference = read_atoms(reference)  # a geometry file (raises if missing)
        label = Path(args.reference).name
    else:
        label = reference
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = order_distances(atoms, reference, cutoff=args.cutoff, max_points=args.max_points, seed=args.seed)
    for w in caught:
        log.warning(f"warning: {w.message}")
    res["reference"] = label
    print(f"{args.file}: {res['n_O']} O atoms; {res['n_centres']} with four O neighbours within "
          f"{res['cutoff_A']:g} Å, {res['n_excluded']} excluded "
          f"({100 * res['fraction_included']:.1f} % included)" if res["n_O"] else
          f"{args.file}: no O atoms")
    print(f"{'':32s}{'n':>7s}   {'S_k mean ± std':24s}{'S_g mean ± std':24s}")
    print(f"{'prediction':32s}{res['n_centres']:7d}   {_fmt(res['S_k_mean'], res['S_k_std']):24s}"
          f"{_fmt(res['S_g_mean'], res['S_g_std']):24s}")
    print(f"{'reference (' + label[:20] + ')':32s}{res['n_reference']:7d}   "
          f"{_fmt(res['reference_S_k_mean'], res['reference_S_k_std']):24s}"
          f"{_fmt(res['reference_S_g_mean'], res['reference_S_g_std']):24s}")
    if res["n_centres"] == 0:
        print("distances: n/a (no O atom has four O neighbours within the cutoff)")
    else:
        print(f"Wasserstein S_k         {res['wasserstein_S_k']:.6g}")
        print(f"Wasserstein S_g         {res['wasserstein_S_g']:.6g}")
        print(f"EMD (S_k, S_g) 2-D      {res['emd_2d']:.6g}   [in reference std units; {res['emd_2d_method']}]")
        mmd = "n/a (needs 2 centres)" if not math.isfinite(res["mmd2"]) else \
            f"{res['mmd2']:.6g}   [unbiased, Gaussian kernel σ = {res['mmd_bandwidth']:.4g}]"
        print(f"MMD² (S_k, S_g)         {mmd}")
    if args.csv:
        rep = tetrahedral_order_report(oxygen_positions_of(atoms), args.cutoff)
        # Index the rows by the atom's index in the file (not among O atoms only).
        o_index = np.flatnonzero(np.asarray(atoms.numbers) == atomic_numbers["O"])
        out = write_order_csv(args.csv, o_index[rep.centre_indices], rep.S_k, rep.S_g,
                              positions_A=atoms.positions, distances=res)
        print(f"wrote {out}")
    return 0
