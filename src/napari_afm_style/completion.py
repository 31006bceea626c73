"""Complete a predicted or hand-edited geometry so that ppafm can simulate it.

A prediction holds only what the network saw: adsorbate atoms, maybe only O, and no
substrate. The probe-particle model needs every atom that contributes to the force on
the tip. Here:

* **Substrate**: if no Au is present, a Au(111) slab (2 layers) is put under the
  water with its top layer ``WATER_HEIGHT_A`` (3.35 Å, median of the DFT structures)
  below the lowest O, covering the scan window plus a margin. Its van der Waals
  attraction sets the background Δf.
* **Hydrogens**: if there are O but no H, two H per O are placed by the ice rules
  (:func:`napari_afm_style.structures.assign_hydrogens`, seeded, so deterministic),
  dangling H pointing away from the surface; if H are present they are kept as given.
* **Charges**: left to :func:`napari_afm_style.simulate.simulate` (water point charges
  when all are zero).

Everything added is recorded in ``atoms.info["completion"]``.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from .structures import WATER_HEIGHT_A, assign_hydrogens, au111_slab

__all__ = ["complete_structure"]

SUBSTRATE = ("Au", "Ag", "Cu")


def _merge_close(points: np.ndarray, min_distance_A: float) -> np.ndarray:
    """Replace groups of points closer than ``min_distance_A`` by their mean (two O
    cannot be that close; a prediction or a hand edit may have doubled one)."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(points).query_pairs(min_distance_A, output_type="ndarray")
    if not len(pairs):
        return points
    from scipy.sparse import coo_matrix

    n = len(points)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.array([points[labels == k].mean(axis=0) for k in range(labels.max() + 1)])


def complete_structure(atoms: Atoms, window_A=None, seed: int = 0,
                       add_substrate: bool = True, add_hydrogens: bool = True) -> Atoms:
    """A copy of ``atoms`` with substrate and missing H added (see module docstring).

    Parameters
    ----------
    atoms : ase.Atoms
        Geometry in Å (e.g. from :func:`napari_afm_style.predict.predict`).
    window_A : ((x0, y0), (x1, y1)), optional
        Lateral extent the substrate must cover (the scan window); default: the atoms'
        extent. A margin of 8 Å is added on every side.
    seed : int
        Seed for the hydrogen orientations.

    >>> from ase import Atoms
    >>> full = complete_structure(Atoms("O2", positions=[[0, 0, 8], [2.78, 0, 8]]))
    >>> sorted(set(full.get_chemical_symbols()))
    ['Au', 'H', 'O']
    """
    if len(atoms) == 0:
        raise ValueError("the geometry has no atoms; predict or add atoms before re-simulating")
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        raise ValueError("the geometry has NaN/inf positions")
    out = atoms.copy()
    symbols = np.array(out.get_chemical_symbols())
    record = {}
    oxygen = pos[symbols == "O"]
    if add_hydrogens and len(oxygen) and not np.any(symbols == "H"):
        oxygen = _merge_close(oxygen, 1.5)
        if len(oxygen) < int(np.sum(symbols == "O")):
            record["oxygens_merged"] = int(np.sum(symbols == "O")) - len(oxygen)
            out = out[symbols != "O"] + Atoms("O" * len(oxygen), positions=oxygen)
            symbols = np.array(out.get_chemical_symbols())
    if add_hydrogens and len(oxygen) and not np.any(symbols == "H"):
        h = np.asarray(assign_hydrogens(oxygen, np.random.default_rng(seed)), dtype=float)
        h = h.reshape(-1, 3)
        out += Atoms("H" * len(h), positions=h)
        record["hydrogens_added"] = int(len(h))
        record["hydrogens_method"] = "ice rules (structures.assign_hydrogens), seed %d" % seed
    if add_substrate and not np.any(np.isin(symbols, SUBSTRATE)):
        ads = out.get_positions()
        if window_A is None:
            lo, hi = ads[:, :2].min(axis=0), ads[:, :2].max(axis=0)
        else:
            lo, hi = np.asarray(window_A[0], float), np.asarray(window_A[1], float)
        margin = 8.0
        size = (hi - lo) + 2 * margin
        centre = 0.5 * (lo + hi)
        lowest = float((oxygen[:, 2] if len(oxygen) else ads[:, 2]).min())
        top_z = lowest - WATER_HEIGHT_A
        slab = au111_slab(size_A=tuple(size), layers=2, top_z_A=top_z, center_A=tuple(centre))
        out += slab
        record.update(substrate_added="Au(111), 2 layers", substrate_top_z_A=top_z)
    out.info["completion"] = record
    return out
