"""Checks of a structure: molecules, H-bond geometry and the rings of a layer."""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from .common import HBOND_CUTOFF_A, TAG_LOWER, bond_pairs


def water_molecules(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of O, of H, and the molecule (index into O) of every H (nearest O)."""
    z = atoms.numbers
    oi, hi = np.flatnonzero(z == 8), np.flatnonzero(z == 1)
    if len(oi) == 0:
        return oi, hi, np.zeros(0, int)
    if len(hi) == 0:
        return oi, hi, np.zeros(0, int)
    _, owner = cKDTree(atoms.positions[oi]).query(atoms.positions[hi])
    return oi, hi, np.asarray(owner, dtype=int)


def check_geometry(atoms: Atoms) -> dict:
    """Geometric sanity numbers of a water structure (used by the tests).

    Every H belongs to its nearest O. Returns a dict with: ``n_water``; ``h_per_o``
    (array, H per O); ``oo_min_A`` (smallest O–O distance); ``oh_min_A``/``oh_max_A``
    (O–H bond lengths); ``hoh_min_deg``/``hoh_max_deg`` (for O with two H);
    ``min_intermolecular_A`` (smallest distance between atoms of different molecules,
    H-bonds included: H···O ≈ 1.8 Å); ``au_top_z_A`` (z of the topmost Au, NaN without
    Au); ``o_height_min_A``/``o_height_max_A`` (O z above the top Au); and
    ``min_water_au_A`` (smallest water–Au distance). ``ok`` is True when every O has two
    H, O–H ∈ [0.9, 1.05] Å, O–O ≥ 2.5 Å, no intermolecular pair < 1.5 Å and (with Au)
    no water atom closer than 2.0 Å to Au.
    """
    pos = atoms.positions
    oi, hi, owner = water_molecules(atoms)
    out: dict = {"n_water": int(len(oi))}
    h_per_o = np.bincount(owner, minlength=len(oi)) if len(oi) else np.zeros(0, int)
    out["h_per_o"] = h_per_o
    oo = pos[oi]
    if len(oi) > 1:
        d, _ = cKDTree(oo).query(oo, k=2)
        out["oo_min_A"] = float(d[:, 1].min())
    else:
        out["oo_min_A"] = math.inf
    if len(hi):
        oh = np.linalg.norm(pos[hi] - oo[owner], axis=1)
        out["oh_min_A"], out["oh_max_A"] = float(oh.min()), float(oh.max())
    else:
        out["oh_min_A"] = out["oh_max_A"] = math.nan
    angles = []
    for m in np.flatnonzero(h_per_o == 2):
        v = pos[hi[owner == m]] - oo[m]
        cosang = np.dot(v[0], v[1]) / np.prod(np.linalg.norm(v, axis=1))
        angles.append(math.degrees(math.acos(np.clip(cosang, -1, 1))))
    out["hoh_min_deg"] = float(min(angles)) if angles else math.nan
    out["hoh_max_deg"] = float(max(angles)) if angles else math.nan
    water_idx = np.r_[oi, hi]
    mol = np.r_[np.arange(len(oi)), owner]
    wpos = pos[water_idx]
    mind = math.inf
    if len(wpos) > 1:
        tree = cKDTree(wpos)
        for a, b in tree.query_pairs(3.0, output_type="ndarray"):
            if mol[a] != mol[b]:
                mind = min(mind, float(np.linalg.norm(wpos[a] - wpos[b])))
    out["min_intermolecular_A"] = mind
    au = np.flatnonzero(atoms.numbers == 79)
    if len(au):
        top = float(pos[au, 2].max())
        out["au_top_z_A"] = top
        out["o_height_min_A"] = float(oo[:, 2].min() - top) if len(oi) else math.nan
        out["o_height_max_A"] = float(oo[:, 2].max() - top) if len(oi) else math.nan
        out["min_water_au_A"] = float(cKDTree(pos[au]).query(wpos)[0].min()) if len(wpos) else math.inf
    else:
        out["au_top_z_A"] = out["o_height_min_A"] = out["o_height_max_A"] = math.nan
        out["min_water_au_A"] = math.inf
    out["ok"] = bool(
        len(oi) > 0
        and np.all(h_per_o == 2)
        and out["oh_min_A"] >= 0.9 and out["oh_max_A"] <= 1.05
        and out["oo_min_A"] >= 2.5
        and out["min_intermolecular_A"] >= 1.5
        and out["min_water_au_A"] >= 2.0
    )
    return out


def layer_rings(atoms: Atoms, tag: int = TAG_LOWER, cutoff_A: float = HBOND_CUTOFF_A) -> list[int]:
    """Sizes of the rings (faces) of the H-bond network of one water layer, seen from
    above (a planar graph): 6 for perfect honeycomb, 5 and 7 at Stone–Wales defects.

    The outer boundary of each fragment is not a ring and is left out.
    """
    sel = np.flatnonzero((atoms.numbers == 8) & (atoms.get_tags() == tag))
    xy = atoms.positions[sel, :2]
    n = len(xy)
    if n < 3:
        return []
    pairs = bond_pairs(atoms.positions[sel], cutoff_A)
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for i, j in pairs:
        nbrs[i].append(int(j)), nbrs[j].append(int(i))
    # neighbours sorted counter-clockwise
    for i in range(n):
        nbrs[i].sort(key=lambda j: math.atan2(*(xy[j] - xy[i])[::-1]))
    seen: set[tuple[int, int]] = set()
    rings = []
    for i in range(n):
        for j in nbrs[i]:
            if (i, j) in seen:
                continue
            face = []
            u, v = i, j
            while (u, v) not in seen:
                seen.add((u, v))
                face.append(u)
                lst = nbrs[v]
                k = lst.index(u)
                u, v = v, lst[(k - 1) % len(lst)]  # turn: next edge clockwise from (v→u)
            if len(face) < 3:
                continue
            p = xy[face]
            area = 0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])
            if area > 0 and len(set(face)) == len(face):
                rings.append(len(face))
    return sorted(rings)
