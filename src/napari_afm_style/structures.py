"""Theoretical water structures on Au(111): bilayer hexagonal ice fragments, ring defects,
small 3D clusters, ice-rule hydrogens, thermal jitter and a Au(111) slab.

The generator produces training / reference geometries (``ase.Atoms``, positions in Å) in
the same frame as the project's DFT structures (``../shared/data/theory_structures``):
the top Au layer at ``z = AU_TOP_Z_A`` (4.71 Å) and water above it.

Physical model
--------------
* **Bilayer hexagonal ice** (Ma et al., Nature 577, 60 (2020)): two flat honeycomb layers
  of O with in-layer O–O ≈ 2.78 Å, stacked AA so that every upper molecule sits straight
  above a lower one (vertical interlayer H-bond). An interior molecule then has three
  in-layer H-bonds and one interlayer H-bond.
* **Heights**, calibrated on the 60 DFT structures: the lower (first) layer O sit
  3.35 Å above the top Au layer (median; std 0.34 Å, neighbouring O buckled by ≈0.4 Å),
  the upper molecules ≈5.8 Å above Au (median).
* **Defects**: ragged edges (Eden growth of hexagonal rings with a tunable compactness,
  plus removal of edge molecules), vacancies, and 5-7 ring pairs made by Stone–Wales bond
  rotations in the lower layer followed by a relaxation of a simple spring network
  (bond lengths, next-nearest-neighbour distances, non-bonded repulsion). The upper layer
  copies the relaxed lower layer, so a defect goes through the bilayer. This is a
  pragmatic, geometric model of 5-7 defects, not a DFT relaxation.
* **3D clusters**: cyclic trimer/tetramer/pentamer/hexamer, prism hexamer (a cage-like
  hexamer with nine H-bonds), cubic octamer, and random compact aggregates for other
  sizes; they sit on Au or on the first water layer, settled so that their lowest O
  touch what is below at the H-bond distance.
* **Hydrogens** follow the Bernal–Fowler ice rules as far as the fragment allows: every
  O carries exactly two covalent H (O–H 0.98 Å, H–O–H 104.5°); every H-bond (O–O within
  3.2 Å) carries exactly one H; a molecule accepts at most two H. The assignment is an
  Euler orientation of the H-bond graph augmented with a "vacuum" node that takes the
  missing bonds of under-coordinated molecules (see :func:`assign_hydrogens`); those
  molecules get dangling H that point away from their neighbours, preferably upwards.
* **Thermal jitter**: rigid Gaussian displacement and a small rotation of each molecule
  plus a tiny internal noise, so O–H lengths and angles stay physical.

Every function is deterministic given its ``rng`` (a ``numpy.random.Generator`` or an
integer seed).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from scipy.optimize import minimize
from scipy.spatial import cKDTree

__all__ = [
    "water_molecules",
    "generate_structure",
    "bilayer_ice",
    "water_cluster",
    "au111_slab",
    "assign_hydrogens",
    "check_geometry",
    "layer_rings",
    "theory_reference_structures",
    "KINDS",
    "AUTO_KIND_WEIGHTS",
    "AU_LATTICE_A",
    "AU_NN_A",
    "AU_TOP_Z_A",
    "WATER_HEIGHT_A",
    "OO_DISTANCE_A",
    "OH_BOND_A",
    "HOH_ANGLE_DEG",
    "HBOND_CUTOFF_A",
    "TAG_SUBSTRATE",
    "TAG_LOWER",
    "TAG_UPPER",
    "TAG_CLUSTER",
]

#: fcc lattice constant of Au (Å) and its nearest-neighbour distance (Å).
AU_LATTICE_A = 4.078
AU_NN_A = AU_LATTICE_A / math.sqrt(2.0)
#: z (Å) of the top Au layer, as in the project's DFT structures (keeps one frame for both).
AU_TOP_Z_A = 4.71
#: Height (Å) of first-layer O above the top Au layer: median over the 60 DFT structures.
WATER_HEIGHT_A = 3.35
#: In-layer and interlayer O–O distance (Å) of bilayer ice (Ma et al. 2020: 2.75–2.80 Å).
OO_DISTANCE_A = 2.78
#: Covalent O–H bond length (Å; DFT structures: median 0.989 Å) and H–O–H angle (degrees).
OH_BOND_A = 0.98
HOH_ANGLE_DEG = 104.5
#: O–O distance (Å) below which two molecules count as H-bonded.
HBOND_CUTOFF_A = 3.2
#: ``atoms.get_tags()`` values: substrate, first (lower) layer, upper layer, 3D cluster.
TAG_SUBSTRATE, TAG_LOWER, TAG_UPPER, TAG_CLUSTER = 0, 1, 2, 3

KINDS = ("bilayer", "bilayer_defects", "cluster", "mixed")
#: Probabilities of the kinds drawn by ``kind="auto"``.
AUTO_KIND_WEIGHTS = {"bilayer": 0.25, "bilayer_defects": 0.35, "cluster": 0.15, "mixed": 0.25}

# Cluster tops stay at most this far (Å) above the top Au layer: the DFT structures'
# water reaches 8.1 Å, so clusters rest on Au or on a first layer, not on an upper layer.
_MAX_WATER_TOP_A = 8.5
# Dangling H must keep at least this far (Å) from atoms of other molecules.
_DANGLING_MIN_O_A = 2.2
_DANGLING_MIN_H_A = 2.0


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _as_rng(rng_or_seed) -> tuple[np.random.Generator, int | None]:
    """A Generator and the integer seed it came from (None if a Generator was passed)."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed, None
    if rng_or_seed is None:
        # Draw a seed so the structure can still be reproduced from atoms.info["seed"].
        seed = int(np.random.SeedSequence().generate_state(1)[0])
        return np.random.default_rng(seed), seed
    if isinstance(rng_or_seed, (int, np.integer)) and not isinstance(rng_or_seed, bool):
        if rng_or_seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {rng_or_seed}")
        return np.random.default_rng(int(rng_or_seed)), int(rng_or_seed)
    raise ValueError(
        f"rng must be a numpy Generator, a non-negative integer seed or None; got {rng_or_seed!r}"
    )


def _window(size_A) -> tuple[float, float]:
    size = np.atleast_1d(np.asarray(size_A, dtype=float)).ravel()
    if size.size == 1:
        size = np.repeat(size, 2)
    if size.shape != (2,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"size_A must be a positive (width_x, width_y) pair in Å, got {size_A!r}")
    return float(size[0]), float(size[1])


def _rot2(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1.0, n)


def _random_rotation(rng: np.random.Generator, sigma_rad: float) -> np.ndarray:
    """A rotation matrix about a random axis by a Gaussian angle (sigma in radians)."""
    axis = _unit(rng.normal(size=3))
    angle = rng.normal(0.0, sigma_rad)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _bond_pairs(points: np.ndarray, cutoff: float) -> np.ndarray:
    if len(points) < 2:
        return np.zeros((0, 2), dtype=int)
    pairs = cKDTree(points).query_pairs(cutoff, output_type="ndarray")
    return np.asarray(pairs, dtype=int).reshape(-1, 2)


# ------------------------------------------------------------------------------------------
# honeycomb fragments
# ------------------------------------------------------------------------------------------
_CELL_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1))


def _grow_honeycomb(
    n_rings: int,
    lateral_A: float,
    rotation_rad: float,
    window: tuple[float, float],
    margin_A: float,
    compactness: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[set[int]], int]:
    """Grow a fragment of ``n_rings`` hexagonal rings inside the window (Eden growth).

    Returns O positions (N, 2) in the window frame (centred at the origin), the sublattice
    (0/1) of each vertex, the adjacency sets, and the number of rings actually grown
    (smaller than requested when the window is full).
    """
    a_cell = lateral_A * math.sqrt(3.0)  # distance between ring centres
    a1 = np.array([a_cell, 0.0])
    a2 = np.array([a_cell / 2, a_cell * math.sqrt(3.0) / 2])
    offset = rng.random() * a1 + rng.random() * a2  # random registry of the lattice
    rot = _rot2(rotation_rad)
    vert_angles = np.deg2rad(30.0 + 60.0 * np.arange(6))
    vert_rel = lateral_A * np.c_[np.cos(vert_angles), np.sin(vert_angles)]
    half = np.array(window) / 2 - margin_A
    if np.any(half <= lateral_A):
        raise ValueError(
            f"the window {window} Å minus a margin of {margin_A} Å is too small for even one "
            "hexagonal ring; enlarge size_A or reduce margin_A"
        )
    reach = int(math.ceil(math.hypot(*window) / a_cell)) + 2

    def centre(cell):
        return cell[0] * a1 + cell[1] * a2 + offset

    def vertices_window(cell):
        return (rot @ (centre(cell) + vert_rel).T).T

    def allowed(cell):
        v = vertices_window(cell)
        return bool(np.all(np.abs(v) <= half))

    cells_ok = [
        (i, j)
        for i in range(-reach, reach + 1)
        for j in range(-reach, reach + 1)
        if allowed((i, j))
    ]
    if not cells_ok:
        raise ValueError(f"no hexagonal ring fits in the window {window} Å; enlarge size_A")
    # Start near a random point of the central half of the window: random placement.
    start_pt = (rng.random(2) - 0.5) * half
    centres = np.array([rot @ centre(c) for c in cells_ok])
    start = cells_ok[int(np.argmin(np.linalg.norm(centres - start_pt, axis=1)))]
    ok_set = set(cells_ok)
    grown = [start]
    occupied = {start}
    while len(grown) < n_rings:
        frontier = {}
        for c in grown:
            for d in _CELL_NEIGHBOURS:
                nb = (c[0] + d[0], c[1] + d[1])
                if nb in ok_set and nb not in occupied:
                    frontier[nb] = sum(
                        (nb[0] + e[0], nb[1] + e[1]) in occupied for e in _CELL_NEIGHBOURS
                    )
        if not frontier:
            break
        cand = sorted(frontier)
        w = np.exp(compactness * np.array([frontier[c] for c in cand], dtype=float))
        pick = cand[int(rng.choice(len(cand), p=w / w.sum()))]
        grown.append(pick)
        occupied.add(pick)

    # Unique vertices; the key is the rounded unrotated lattice position.
    keys: dict[tuple[int, int], int] = {}
    pos, sub = [], []
    adjacency: list[set[int]] = []
    for c in grown:
        v_lat = centre(c) + vert_rel
        ids = []
        for k in range(6):
            key = tuple(np.round(v_lat[k] / lateral_A * 1000).astype(int))
            if key not in keys:
                keys[key] = len(pos)
                pos.append(rot @ v_lat[k])
                sub.append(k % 2)
                adjacency.append(set())
            ids.append(keys[key])
        for k in range(6):
            i, j = ids[k], ids[(k + 1) % 6]
            adjacency[i].add(j)
            adjacency[j].add(i)
    return np.array(pos), np.array(sub), adjacency, len(grown)


def _relax_layer(
    xy: np.ndarray, adjacency: list[set[int]], lateral_A: float
) -> np.ndarray:
    """Relax a 2D O network with springs: bonds to ``lateral_A``, weak next-nearest
    neighbours to ``√3·lateral_A`` (i.e. 120° angles), repulsion of non-bonded pairs."""
    n = len(xy)
    bonds = {(min(i, j), max(i, j)) for i in range(n) for j in adjacency[i]}
    second = set()
    for i in range(n):
        nb = sorted(adjacency[i])
        for a in range(len(nb)):
            for b in range(a + 1, len(nb)):
                second.add((min(nb[a], nb[b]), max(nb[a], nb[b])))
    second -= bonds
    r_rep = 3.45  # keep non-bonded O clear of the 3.2 Å H-bond cutoff
    spring_i, spring_j, target, weight, repulsive = [], [], [], [], []
    for i, j in bonds:
        spring_i.append(i), spring_j.append(j), target.append(lateral_A), weight.append(1.0)
        repulsive.append(False)
    for i, j in second:
        spring_i.append(i), spring_j.append(j), target.append(lateral_A * math.sqrt(3.0))
        weight.append(0.05), repulsive.append(False)
    for i, j in _bond_pairs(xy, 4.5):
        if (i, j) not in bonds and (i, j) not in second:
            spring_i.append(i), spring_j.append(j), target.append(r_rep), weight.append(2.0)
            repulsive.append(True)
    I, J = np.array(spring_i), np.array(spring_j)
    T, W, R = np.array(target), np.array(weight), np.array(repulsive)

    def energy(flat):
        p = flat.reshape(n, 2)
        d = p[I] - p[J]
        r = np.linalg.norm(d, axis=1)
        x = r - T
        x = np.where(R & (x > 0), 0.0, x)
        e = float(np.sum(W * x * x))
        g = (2 * W * x / np.maximum(r, 1e-9))[:, None] * d
        grad = np.zeros_like(p)
        np.add.at(grad, I, g)
        np.add.at(grad, J, -g)
        return e, grad.ravel()

    res = minimize(energy, xy.ravel(), jac=True, method="BFGS", options={"maxiter": 400, "gtol": 1e-4})
    return res.x.reshape(n, 2)


def _stone_wales(
    xy: np.ndarray,
    adjacency: list[set[int]],
    n_defects: int,
    lateral_A: float,
    rng: np.random.Generator,
    half_window: np.ndarray,
) -> tuple[np.ndarray, list[set[int]], int]:
    """Apply up to ``n_defects`` Stone–Wales rotations (each turns four hexagons into two
    pentagons and two heptagons) and relax; a rotation whose relaxed network is not
    physical (bonds off by >8 %, non-bonded O closer than 3.25 Å) or leaves the window
    (``|x|, |y| <= half_window``) is undone."""
    done = 0
    touched: set[int] = set()
    tries = 0
    while done < n_defects and tries < 12 * max(n_defects, 1):
        tries += 1
        cands = [
            (i, j)
            for i in range(len(xy))
            for j in adjacency[i]
            if i < j
            and len(adjacency[i]) == 3
            and len(adjacency[j]) == 3
            and not ({i, j} | adjacency[i] | adjacency[j]) & touched
            and all(len(adjacency[k]) >= 2 for k in (adjacency[i] | adjacency[j]) - {i, j})
        ]
        if not cands:
            break
        u, v = cands[int(rng.integers(len(cands)))]
        a = sorted(adjacency[u] - {v})
        b = sorted(adjacency[v] - {u})
        new_xy = xy.copy()
        mid = (xy[u] + xy[v]) / 2
        r90 = _rot2(math.pi / 2)
        new_xy[u] = mid + r90 @ (xy[u] - mid)
        new_xy[v] = mid + r90 @ (xy[v] - mid)
        # u keeps one old neighbour and takes one of v's; choose the shortest pairing.
        best = None
        for ka in range(2):
            for kb in range(2):
                u_nb = (a[ka], b[kb])
                v_nb = (a[1 - ka], b[1 - kb])
                cost = sum(np.sum((new_xy[u] - new_xy[k]) ** 2) for k in u_nb) + sum(
                    np.sum((new_xy[v] - new_xy[k]) ** 2) for k in v_nb
                )
                if best is None or cost < best[0]:
                    best = (cost, u_nb, v_nb)
        _, u_nb, v_nb = best
        new_adj = [set(s) for s in adjacency]
        for k in a + b:
            new_adj[u].discard(k), new_adj[v].discard(k), new_adj[k].discard(u), new_adj[k].discard(v)
        for k in u_nb:
            new_adj[u].add(k), new_adj[k].add(u)
        for k in v_nb:
            new_adj[v].add(k), new_adj[k].add(v)
        relaxed = _relax_layer(new_xy, new_adj, lateral_A)
        if _layer_ok(relaxed, new_adj, lateral_A) and np.all(np.abs(relaxed) <= half_window):
            xy, adjacency = relaxed, new_adj
            touched |= {u, v} | set(a) | set(b)
            done += 1
    return xy, adjacency, done


def _layer_ok(xy: np.ndarray, adjacency: list[set[int]], lateral_A: float) -> bool:
    for i, j in _bond_pairs(xy, 4.0):
        r = float(np.linalg.norm(xy[i] - xy[j]))
        if j in adjacency[i]:
            if abs(r - lateral_A) > 0.08 * lateral_A:
                return False
        elif r < 3.25:
            return False
    for i in range(len(xy)):
        for j in adjacency[i]:
            if abs(np.linalg.norm(xy[i] - xy[j]) - lateral_A) > 0.08 * lateral_A:
                return False
    return True


def _bilayer_oxygens(
    rng: np.random.Generator,
    *,
    n_rings: int,
    oo_distance_A: float,
    interlayer_A: float,
    buckling_A: float,
    rotation_deg: float,
    window: tuple[float, float],
    margin_A: float,
    compactness: float,
    upper_coverage: float,
    n_stone_wales: int,
    n_vacancies: int,
    n_edge_removals: int,
    base_z_A: float,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """O positions (N, 3) and tags (lower / upper) of a bilayer-ice fragment + a record."""
    if n_rings < 1:
        raise ValueError(f"n_rings must be at least 1, got {n_rings}")
    if not 0.0 <= upper_coverage <= 1.0:
        raise ValueError(f"upper_coverage must be in [0, 1], got {upper_coverage}")
    if not 0.0 <= buckling_A < 0.5 * oo_distance_A:
        raise ValueError(f"buckling_A must be in [0, {0.5 * oo_distance_A:.2f}) Å, got {buckling_A}")
    if not 2.5 <= oo_distance_A <= 3.1:
        raise ValueError(f"oo_distance_A must be an H-bond length in [2.5, 3.1] Å, got {oo_distance_A}")
    # Lateral O–O distance such that the buckled 3D distance equals oo_distance_A.
    lateral = math.sqrt(oo_distance_A**2 - buckling_A**2)
    xy, sub, adj, grown = _grow_honeycomb(
        n_rings, lateral, math.radians(rotation_deg), window, margin_A, compactness, rng
    )
    half = np.array(window) / 2 - margin_A
    xy, adj, n_sw = _stone_wales(xy, adj, n_stone_wales, lateral, rng, half)
    n = len(xy)
    z_lower = base_z_A + np.where(sub == 0, 0.5, -0.5) * buckling_A

    # Upper layer: a connected patch of the lower layer (AA stacking, vertical bonds).
    n_up = int(round(upper_coverage * n))
    upper = np.zeros(n, dtype=bool)
    if n_up > 0:
        seed_i = int(rng.integers(n))
        queue, seen = [seed_i], {seed_i}
        while queue and upper.sum() < n_up:
            k = queue.pop(int(rng.integers(len(queue))))
            upper[k] = True
            for nb in adj[k]:
                if nb not in seen:
                    seen.add(nb), queue.append(nb)
        # a disconnected fragment: fill the rest from random unvisited sites
        rest = [k for k in rng.permutation(n) if not upper[k]]
        for k in rest[: max(0, n_up - int(upper.sum()))]:
            upper[k] = True

    lower_alive = np.ones(n, dtype=bool)
    removed_vac = removed_edge = 0
    for _ in range(n_vacancies):
        # A vacancy: an upper molecule, or a lower one together with the one above it
        # (an upper molecule cannot float over a hole).
        alive = [("u", k) for k in range(n) if upper[k]] + [
            ("l", k) for k in range(n) if lower_alive[k]
        ]
        if len(alive) <= 3:
            break
        layer, k = alive[int(rng.integers(len(alive)))]
        if layer == "u":
            upper[k] = False
        else:
            lower_alive[k] = False
            upper[k] = False
        removed_vac += 1
    for _ in range(n_edge_removals):
        edge = [
            k for k in range(n)
            if lower_alive[k] and sum(lower_alive[j] for j in adj[k]) <= 2
        ]
        if len(edge) == 0 or lower_alive.sum() <= 3:
            break
        k = edge[int(rng.integers(len(edge)))]
        lower_alive[k] = False
        upper[k] = False
        removed_edge += 1

    lower_pos = np.c_[xy, z_lower][lower_alive]
    upper_pos = np.c_[xy, z_lower + interlayer_A][upper & lower_alive]
    pos = np.vstack([lower_pos, upper_pos])
    tags = np.r_[np.full(len(lower_pos), TAG_LOWER), np.full(len(upper_pos), TAG_UPPER)]
    record = {
        "n_rings_requested": int(n_rings),
        "n_rings": int(grown),
        "rotation_deg": float(rotation_deg),
        "oo_distance_A": float(oo_distance_A),
        "interlayer_A": float(interlayer_A),
        "buckling_A": float(buckling_A),
        "compactness": float(compactness),
        "upper_coverage": float(upper_coverage),
        "n_stone_wales": int(n_sw),
        "n_vacancies": int(removed_vac),
        "n_edge_removals": int(removed_edge),
        "n_lower": int(len(lower_pos)),
        "n_upper": int(len(upper_pos)),
    }
    return pos, tags, record


# ------------------------------------------------------------------------------------------
# 3D clusters
# ------------------------------------------------------------------------------------------
def _ring(n: int, oo: float, pucker_A: float) -> np.ndarray:
    r = oo / (2 * math.sin(math.pi / n))
    t = 2 * math.pi * np.arange(n) / n
    z = pucker_A * np.where(np.arange(n) % 2 == 0, 1.0, -1.0) if n % 2 == 0 else np.zeros(n)
    return np.c_[r * np.cos(t), r * np.sin(t), z]


def _cluster_oxygens(n: int, rng: np.random.Generator, oo: float) -> tuple[np.ndarray, str]:
    """O positions of an n-molecule cluster (lowest O at z = 0, centred laterally)."""
    if n < 1:
        raise ValueError(f"n_molecules must be at least 1, got {n}")
    if n == 1:
        pos, shape = np.zeros((1, 3)), "monomer"
    elif n == 2:
        pos, shape = np.array([[0.0, 0, 0], [oo, 0, 0]]), "dimer"
    elif n in (3, 4, 5):
        name = ("trimer", "tetramer", "pentamer")[n - 3]
        pos, shape = _ring(n, oo, 0.25 if n == 4 else 0.0), f"cyclic {name}"
    elif n == 6 and rng.random() < 0.5:
        pos, shape = _ring(6, oo, 0.3), "cyclic hexamer (chair)"
    elif n == 6:
        tri = _ring(3, oo, 0.0)
        pos, shape = np.vstack([tri, tri + [0, 0, oo]]), "prism hexamer (cage-like)"
    elif n == 8:
        sq = _ring(4, oo, 0.0)
        pos, shape = np.vstack([sq, sq + [0, 0, oo]]), "cubic octamer"
    else:
        pos, shape = _aggregate(n, rng, oo), f"compact aggregate ({n})"
    # random in-plane orientation and a small tilt: clusters rest on a surface
    tilt = _random_rotation(rng, math.radians(6.0))
    pos = pos @ tilt.T
    pos[:, :2] = pos[:, :2] @ _rot2(rng.uniform(0, 2 * math.pi)).T
    pos -= [pos[:, 0].mean(), pos[:, 1].mean(), pos[:, 2].min()]
    return pos, shape


def _aggregate(n: int, rng: np.random.Generator, oo: float) -> np.ndarray:
    """Random compact aggregate: add molecules one by one at the H-bond distance from an
    existing one, preferring sites with many neighbours, never more than four each."""
    pos = [np.zeros(3)]
    while len(pos) < n:
        p = np.array(pos)
        best, best_score = None, -1.0
        for _ in range(60):
            d = _unit(rng.normal(size=3))
            d[2] = abs(d[2]) * 0.5  # grow mostly sideways on the surface, not into it
            cand = p[int(rng.integers(len(p)))] + oo * _unit(d)
            if cand[2] < -0.2:
                continue
            r = np.linalg.norm(p - cand, axis=1)
            if r.min() < oo - 0.05:
                continue
            close = r < HBOND_CUTOFF_A
            counts = np.array([np.sum(np.linalg.norm(p - q, axis=1) < HBOND_CUTOFF_A) - 1 for q in p[close]])
            if close.sum() > 4 or np.any(counts >= 4):
                continue
            score = close.sum() - 0.5 * cand[2] / oo + 0.3 * rng.random()  # compact, low
            if score > best_score:
                best, best_score = cand, score
        if best is None:  # extremely unlikely; fall back to a chain step upwards
            best = p[-1] + [0.0, 0.0, oo]
        pos.append(best)
    return np.array(pos)


# ------------------------------------------------------------------------------------------
# hydrogens
# ------------------------------------------------------------------------------------------
def _euler_orientation(
    n: int, edges: list[tuple[int, int]], rng: np.random.Generator, n_flips: int
) -> list[tuple[int, int]]:
    """Orient the edges of an even-degree multigraph so every node has in = out degree.

    Closed trails are walked from random nodes along random unused edges (in an
    even-degree graph a trail can only get stuck where it started); then ``n_flips``
    random directed cycles are reversed, which keeps all in/out degrees and mixes the
    configuration (the loop move of ice-rule Monte Carlo).
    """
    inc: list[list[int]] = [[] for _ in range(n)]
    for e, (i, j) in enumerate(edges):
        inc[i].append(e)
        inc[j].append(e)
    used = np.zeros(len(edges), dtype=bool)
    orient: list[tuple[int, int] | None] = [None] * len(edges)
    pointer = [list(rng.permutation(lst)) for lst in inc]
    for start in rng.permutation(n):
        while pointer[start]:
            node = start
            while True:
                while pointer[node] and used[pointer[node][-1]]:
                    pointer[node].pop()
                if not pointer[node]:
                    break
                e = pointer[node].pop()
                used[e] = True
                i, j = edges[e]
                other = j if i == node else i
                orient[e] = (node, other)
                node = other
            while pointer[start] and used[pointer[start][-1]]:
                pointer[start].pop()
    out: list[list[int]] = [[] for _ in range(n)]
    for e, (i, _) in enumerate(orient):
        out[i].append(e)
    for _ in range(n_flips):
        node = int(rng.integers(n))
        if not out[node]:
            continue
        path_nodes, path_edges, where = [node], [], {node: 0}
        while True:
            e = out[node][int(rng.integers(len(out[node])))]
            node = orient[e][1]
            path_edges.append(e)
            if node in where:
                cycle = path_edges[where[node]:]
                break
            where[node] = len(path_nodes)
            path_nodes.append(node)
        for e in cycle:
            i, j = orient[e]
            out[i].remove(e)
            out[j].append(e)
            orient[e] = (j, i)
    return orient  # type: ignore[return-value]


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    r = np.sqrt(1 - z * z)
    phi = math.pi * (3 - math.sqrt(5)) * k
    return np.c_[r * np.cos(phi), r * np.sin(phi), z]


def _cone(axis: np.ndarray, angle_rad: float, n: int = 72) -> np.ndarray:
    """Unit vectors at ``angle_rad`` from ``axis``."""
    axis = _unit(axis)
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = _unit(np.cross(axis, helper))
    e2 = np.cross(axis, e1)
    phi = 2 * math.pi * np.arange(n) / n
    ring = np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2
    return math.cos(angle_rad) * axis + math.sin(angle_rad) * ring


def assign_hydrogens(
    oxygen_positions,
    rng=None,
    *,
    cutoff_A: float = HBOND_CUTOFF_A,
    oh_A: float = OH_BOND_A,
    hoh_deg: float = HOH_ANGLE_DEG,
    substrate_z_A: float | None = None,
    n_loop_flips: int | None = None,
    return_donors: bool = False,
):
    """Place two H on every O following the Bernal–Fowler ice rules where possible.

    Every pair of O closer than ``cutoff_A`` is an H-bond (a molecule keeps at most its
    four shortest ones). The graph gets an extra "vacuum" node joined to each O by
    ``4 - degree`` edges, so every O has degree four, and the vacuum node an even degree.
    An Euler orientation (in = out at every node) then gives every O exactly two donated
    bonds, every H-bond exactly one H, and no O more than two accepted H; a bond
    oriented towards the vacuum is a dangling H. Random loop flips mix the result.

    Geometry: an O donating two H-bonds puts its H symmetrically about the bisector of
    the two O–O directions, in their plane, at ``hoh_deg``; an H-bond H with a dangling
    partner lies on its O–O line; dangling H point away from all O within 3.6 Å, away
    from H already placed and from the substrate, preferably up (+z). Last, molecules
    whose H come closer than 1.9 Å to another molecule's H or 2.0 Å to an O they do not
    donate to (strained small rings, crowded clusters) are turned rigidly about their O
    to relieve the strain, keeping bonded H close to their O–O lines.

    Parameters
    ----------
    oxygen_positions : array_like, shape (N, 3)
        O positions in Å.
    rng : numpy.random.Generator or int or None
        Randomness (orientation and tie-breaks); an int is a seed.
    cutoff_A : float
        O–O distance (Å) below which two molecules are H-bonded.
    oh_A, hoh_deg : float
        O–H bond length (Å) and H–O–H angle (degrees).
    substrate_z_A : float, optional
        z (Å) of the top substrate layer: dangling H keep ≥ 2 Å above it.
    n_loop_flips : int, optional
        Number of random loop flips (default ``4 * N``).
    return_donors : bool
        Also return, per O, the two acceptor indices (-1 = dangling H).

    Returns
    -------
    numpy.ndarray, shape (N, 2, 3)
        H positions (Å): ``h[i]`` are the two H of O ``i``.
    numpy.ndarray, shape (N, 2), optional
        Acceptor of each H (index of the O it donates to, or -1).
    """
    rng, _ = _as_rng(rng)
    o = np.asarray(oxygen_positions, dtype=float)
    if o.size == 0:
        o = np.zeros((0, 3))
    if o.ndim != 2 or o.shape[1] != 3:
        raise ValueError(f"oxygen_positions must have shape (N, 3) in Å, got {o.shape}")
    if not np.all(np.isfinite(o)):
        raise ValueError("oxygen_positions contain NaN or infinite values")
    n = len(o)
    if n == 0:
        h = np.zeros((0, 2, 3))
        return (h, np.zeros((0, 2), dtype=int)) if return_donors else h
    pairs = _bond_pairs(o, cutoff_A)
    if len(pairs):
        too_close = np.linalg.norm(o[pairs[:, 0]] - o[pairs[:, 1]], axis=1).min()
        if too_close < 1.5:
            raise ValueError(
                f"two O are only {too_close:.2f} Å apart; water molecules need ≥ 2.4 Å "
                "(check for duplicated positions)"
            )
    # keep at most the four shortest H-bonds per molecule
    lengths = np.linalg.norm(o[pairs[:, 0]] - o[pairs[:, 1]], axis=1) if len(pairs) else np.zeros(0)
    deg = np.zeros(n, dtype=int)
    edges: list[tuple[int, int]] = []
    for k in np.argsort(lengths, kind="stable"):
        i, j = int(pairs[k, 0]), int(pairs[k, 1])
        if deg[i] < 4 and deg[j] < 4:
            edges.append((i, j))
            deg[i] += 1
            deg[j] += 1
    vac = n
    for i in range(n):
        edges.extend([(i, vac)] * (4 - deg[i]))
    flips = 4 * n if n_loop_flips is None else int(n_loop_flips)
    orient = _euler_orientation(n + 1, edges, rng, flips)
    donors = [[] for _ in range(n)]
    for i, j in orient:
        if i < n:
            donors[i].append(j if j < n else -1)
    acceptors = np.array([sorted(d, reverse=True) for d in donors], dtype=int)  # bonds first

    theta = math.radians(hoh_deg)
    h = np.full((n, 2, 3), np.nan)
    tree = cKDTree(o)
    # 1) molecules donating two H-bonds: symmetric about the bisector
    for i in range(n):
        if acceptors[i, 1] >= 0:
            a = _unit(o[acceptors[i, 0]] - o[i])
            b = _unit(o[acceptors[i, 1]] - o[i])
            m = _unit(a + b)
            p = a - b
            p = _unit(p - np.dot(p, m) * m)
            for k, s in enumerate((1.0, -1.0)):
                h[i, k] = o[i] + oh_A * (math.cos(theta / 2) * m + s * math.sin(theta / 2) * p)
    # 2) one H-bond H on its O–O line
    for i in range(n):
        if acceptors[i, 0] >= 0 and acceptors[i, 1] < 0:
            h[i, 0] = o[i] + oh_A * _unit(o[acceptors[i, 0]] - o[i])
    # 3) dangling H, in random order, avoiding everything placed so far
    sphere = _fibonacci_sphere(96)
    for i in rng.permutation(n):
        if acceptors[i, 1] >= 0:
            continue
        nb = [j for j in tree.query_ball_point(o[i], 3.6) if j != i]
        nb_dirs = _unit(o[nb] - o[i]) if nb else np.zeros((0, 3))
        placed = h[np.isfinite(h[:, :, 0])]
        others_h = placed[np.linalg.norm(placed - o[i], axis=1) > 1.2] if len(placed) else placed

        def score(dirs):
            p = o[i] + oh_A * dirs
            s = 0.6 * dirs[:, 2] + 0.02 * rng.normal(size=len(dirs))
            if len(nb_dirs):
                cosang = dirs @ nb_dirs.T
                s -= 3.0 * np.sum(np.exp(-(1 - cosang) / 0.12), axis=1)
                dist_o = np.linalg.norm(p[:, None, :] - o[nb][None], axis=2).min(axis=1)
                s -= 10.0 * np.clip(_DANGLING_MIN_O_A - dist_o, 0, None)
            if len(others_h):
                dist_h = np.linalg.norm(p[:, None, :] - others_h[None], axis=2).min(axis=1)
                s -= 10.0 * np.clip(_DANGLING_MIN_H_A - dist_h, 0, None)
            if substrate_z_A is not None:
                s -= 10.0 * np.clip(substrate_z_A + 2.0 - p[:, 2], 0, None)
            return s

        if acceptors[i, 0] >= 0:
            a = _unit(h[i, 0] - o[i])
            cand = _cone(a, theta)
            h[i, 1] = o[i] + oh_A * cand[int(np.argmax(score(cand)))]
        else:
            # two dangling H: best first direction whose best partner on the cone is good
            first = sphere @ _random_rotation(rng, math.pi).T
            s1 = score(first)
            best = (-np.inf, None, None)
            for k in np.argsort(s1)[::-1][:12]:
                cand = _cone(first[k], theta, 36)
                s2 = score(cand)
                j = int(np.argmax(s2))
                if s1[k] + s2[j] > best[0]:
                    best = (s1[k] + s2[j], first[k], cand[j])
            h[i, 0] = o[i] + oh_A * best[1]
            h[i, 1] = o[i] + oh_A * best[2]
    h = _relax_orientations(o, h, acceptors, rng, substrate_z_A)
    if return_donors:
        return h, acceptors
    return h


def _relax_orientations(
    o: np.ndarray,
    h: np.ndarray,
    acceptors: np.ndarray,
    rng: np.random.Generator,
    substrate_z_A: float | None,
    sweeps: int = 3,
    n_trials: int = 48,
) -> np.ndarray:
    """Turn each molecule rigidly about its O to relieve strain that the local placement
    cannot see (strained rings, crowded clusters): keep H-bond H near their O–O lines,
    H ≥ 1.9 Å from other molecules' H, ≥ 2.0 Å from O they do not donate to, ≥ 2 Å
    above the substrate; dangling H prefer up. A few greedy sweeps of random trials."""
    n = len(o)
    if n < 2:
        return h
    tree = cKDTree(o)

    def cost(i, hi):  # hi: (m, 2, 3) candidate H pairs of molecule i
        v = _unit(hi - o[i])
        c = np.zeros(len(hi))
        for k in range(2):
            j = acceptors[i, k]
            if j >= 0:
                c += 4.0 * (1.0 - v[:, k] @ _unit(o[j] - o[i]))
            else:
                c -= 0.3 * v[:, k, 2]
        nb = [j for j in tree.query_ball_point(o[i], 4.5) if j != i]
        if nb:
            other_h = h[nb].reshape(-1, 3)
            d = np.linalg.norm(hi[:, :, None, :] - other_h[None, None], axis=3)
            c += 50.0 * np.sum(np.clip(1.9 - d, 0, None) ** 2, axis=(1, 2))
            for k in range(2):
                others = [j for j in nb if j != acceptors[i, k]]
                if others:
                    d = np.linalg.norm(hi[:, k, None, :] - o[others][None], axis=2)
                    c += 50.0 * np.sum(np.clip(2.0 - d, 0, None) ** 2, axis=1)
        if substrate_z_A is not None:
            c += 50.0 * np.sum(np.clip(substrate_z_A + 2.0 - hi[:, :, 2], 0, None) ** 2, axis=1)
        return c

    def strained() -> np.ndarray:
        hp = h.reshape(-1, 3)
        hm = np.repeat(np.arange(n), 2)
        acc = acceptors.reshape(-1)
        bad = set()
        for a, b in _bond_pairs(hp, 1.9):
            if hm[a] != hm[b]:
                bad |= {hm[a], hm[b]}
        for a, js in enumerate(cKDTree(o).query_ball_point(hp, 2.0)):
            if any(j != hm[a] and j != acc[a] for j in js):
                bad.add(hm[a])
        if substrate_z_A is not None:
            bad |= set(hm[hp[:, 2] < substrate_z_A + 2.0].tolist())
        return np.array(sorted(bad), dtype=int)

    h = h.copy()
    for _ in range(sweeps):
        todo = strained()
        if len(todo) == 0:
            break
        for i in rng.permutation(todo):
            rel = h[i] - o[i]
            trials = [rel] + [rel @ _random_rotation(rng, math.radians(25.0)).T for _ in range(n_trials)]
            cand = o[i] + np.array(trials)
            h[i] = cand[int(np.argmin(cost(i, cand)))]
    return h


# ------------------------------------------------------------------------------------------
# substrate
# ------------------------------------------------------------------------------------------
def au111_slab(
    size_A=(28.0, 28.0),
    layers: int = 2,
    *,
    a_A: float = AU_LATTICE_A,
    top_z_A: float = AU_TOP_Z_A,
    center_A=(0.0, 0.0),
    offset_A=(0.0, 0.0),
) -> Atoms:
    """A Au(111) slab (fcc, lattice constant ``a_A``) covering at least ``size_A``.

    Parameters
    ----------
    size_A : (float, float)
        Lateral extent (x, y) in Å to cover; the slab is the smallest orthogonal
        fcc(111) supercell at least this large.
    layers : int
        Number of Au layers (ABC stacking, interlayer spacing a/√3 = 2.354 Å).
    a_A : float
        fcc lattice constant (Å); nearest-neighbour distance a/√2 = 2.884 Å for Au.
    top_z_A : float
        z of the top layer (Å); the default is the frame of the DFT structures.
    center_A : (float, float)
        Where the centre of the slab's cell lies (Å).
    offset_A : (float, float)
        Extra lateral shift (Å), e.g. a random registry of the adsorbate on the lattice.

    Returns
    -------
    ase.Atoms
        Au atoms with tag 0; ``atoms.cell`` is the slab's periodic cell in x, y (the
        returned Atoms are not periodic: pbc is False, the slab is finite).
    """
    from ase.build import fcc111

    sx, sy = _window(size_A)
    if int(layers) != layers or layers < 1:
        raise ValueError(f"layers must be a positive integer, got {layers}")
    nn = a_A / math.sqrt(2.0)
    nx = max(1, int(math.ceil(sx / nn - 1e-9)))
    ny = max(2, int(math.ceil(sy / (nn * math.sqrt(3) / 2) - 1e-9)))
    ny += ny % 2  # an orthogonal fcc(111) cell needs an even number of rows
    slab = fcc111("Au", size=(nx, ny, int(layers)), a=a_A, orthogonal=True)
    cell = np.array(slab.cell)
    shift = np.array([*center_A, 0.0]) + np.array([*offset_A, 0.0]) - (cell[0] + cell[1]) / 2
    pos = slab.positions + shift
    pos[:, 2] += top_z_A - pos[:, 2].max()
    out = Atoms(["Au"] * len(slab), positions=pos, cell=[cell[0], cell[1], [0, 0, 0]], pbc=False)
    out.set_tags(np.full(len(out), TAG_SUBSTRATE))
    out.info.update({"substrate": "Au(111)", "au_layers": int(layers), "au_top_z_A": float(top_z_A)})
    return out


# ------------------------------------------------------------------------------------------
# assembly
# ------------------------------------------------------------------------------------------
def _water_atoms(o: np.ndarray, h: np.ndarray, tags: np.ndarray) -> Atoms:
    """O, H, H per molecule, with tags and a per-atom molecule index."""
    n = len(o)
    pos = np.empty((3 * n, 3))
    pos[0::3] = o
    pos[1::3] = h[:, 0]
    pos[2::3] = h[:, 1]
    atoms = Atoms(["O", "H", "H"] * n, positions=pos)
    atoms.set_tags(np.repeat(tags, 3))
    atoms.arrays["molecule"] = np.repeat(np.arange(n), 3)
    return atoms


def _jitter(
    o: np.ndarray,
    h: np.ndarray,
    rng: np.random.Generator,
    sigma_A: float,
    window: tuple[float, float] | None,
    fixed_z_min: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rigid Gaussian displacement (σ per axis, clipped at 2.5σ) and rotation (σ ≈ 3° at
    σ = 0.1 Å) of each molecule plus 0.01 Å internal noise of the H; molecules whose
    moves would bring O closer than 2.55 Å, H closer than 1.5 Å to another molecule,
    or out of the window, are re-drawn, then left unjittered."""
    n = len(o)
    if sigma_A <= 0 or n == 0:
        return o, h
    rot_sigma = math.radians(30.0) * sigma_A  # 3° per 0.1 Å
    o_new, h_new = o.copy(), h.copy()
    todo = np.arange(n)
    for attempt in range(8):
        for i in todo:
            if attempt == 7:
                o_new[i], h_new[i] = o[i], h[i]
                continue
            d = np.clip(rng.normal(0, sigma_A, 3), -2.5 * sigma_A, 2.5 * sigma_A)
            rmat = _random_rotation(rng, rot_sigma)
            o_new[i] = o[i] + d
            h_new[i] = o_new[i] + (h[i] - o[i]) @ rmat.T + np.clip(rng.normal(0, 0.01, (2, 3)), -0.03, 0.03)
        bad = set()
        pts = np.vstack([o_new, h_new.reshape(-1, 3)])
        mol = np.r_[np.arange(n), np.repeat(np.arange(n), 2)]
        is_o = np.r_[np.ones(n, bool), np.zeros(2 * n, bool)]
        for a, b in _bond_pairs(pts, 2.55):
            if mol[a] == mol[b]:
                continue
            r = np.linalg.norm(pts[a] - pts[b])
            if (is_o[a] and is_o[b]) or r < 1.5:
                bad |= {mol[a], mol[b]}
        if window is not None:
            half = np.array(window) / 2
            out = np.any(np.abs(pts[:, :2]) > half, axis=1)
            bad |= set(mol[out].tolist())
        if fixed_z_min is not None:
            bad |= set(mol[pts[:, 2] < fixed_z_min].tolist())
        if not bad:
            break
        todo = np.array(sorted(bad))
    return o_new, h_new


def _place_cluster(
    cluster: np.ndarray,
    support: np.ndarray,
    rng: np.random.Generator,
    window: tuple[float, float],
    margin_A: float,
    base_z: float,
    max_top_z: float,
    mode: str,
    oo: float,
    tries: int = 300,
) -> np.ndarray | None:
    """Drop a cluster at a random lateral position and let it settle: it sits at
    ``base_z`` on the substrate, or higher so that its O touch the O below at ``oo``.

    ``mode``: "beside" (on the substrate, ≥ 3.5 Å from other water), "on_layer" (resting
    on other water, its bottom molecules over water), "any".
    """
    half = np.array(window) / 2 - margin_A
    ext_lo, ext_hi = cluster[:, :2].min(0), cluster[:, :2].max(0)
    lo, hi = -half - ext_lo, half - ext_hi
    if np.any(lo > hi):
        return None
    for _ in range(tries):
        xy = lo + rng.random(2) * (hi - lo)
        c = cluster + [xy[0], xy[1], 0.0]
        z0 = base_z
        if len(support):
            dxy = np.linalg.norm(c[:, None, :2] - support[None, :, :2], axis=2)
            touch = dxy < oo
            if np.any(touch):
                need = support[None, :, 2] + np.sqrt(np.clip(oo**2 - dxy**2, 0, None)) - cluster[:, None, 2]
                z0 = max(z0, float(need[touch].max()))
        c = cluster + [xy[0], xy[1], z0]
        if c[:, 2].max() > max_top_z:
            continue
        if len(support):
            dmin = np.linalg.norm(c[:, None] - support[None], axis=2).min()
            if dmin < oo - 0.05:
                continue
            if mode == "beside" and (z0 > base_z + 1e-6 or dmin < 3.5):
                continue
            if mode == "on_layer":
                bottom = c[c[:, 2] < c[:, 2].min() + 0.5]
                lat = np.linalg.norm(bottom[:, None, :2] - support[None, :, :2], axis=2).min(axis=1)
                # rest on the first layer (≈ base + oo), not on an upper-layer molecule
                if z0 < base_z + 1.0 or z0 > base_z + oo + 0.3 or np.any(lat > 2.0):
                    continue
        elif mode == "on_layer":
            return None
        return c
    return None


def _finish(
    o: np.ndarray,
    tags: np.ndarray,
    rng: np.random.Generator,
    *,
    jitter_A: float,
    window: tuple[float, float] | None,
    substrate_z_A: float | None,
) -> Atoms:
    h = assign_hydrogens(o, rng, substrate_z_A=substrate_z_A)
    o, h = _jitter(
        o, h, rng, jitter_A, window,
        None if substrate_z_A is None else substrate_z_A + 1.8,
    )
    return _water_atoms(o, h, tags)


def bilayer_ice(
    n_rings: int = 7,
    oo_distance_A: float = OO_DISTANCE_A,
    *,
    rng=None,
    interlayer_A: float | None = None,
    buckling_A: float = 0.0,
    rotation_deg: float | None = None,
    size_A=(16.0, 16.0),
    margin_A: float = 1.0,
    compactness: float = 2.0,
    upper_coverage: float = 1.0,
    n_stone_wales: int = 0,
    n_vacancies: int = 0,
    n_edge_removals: int = 0,
    base_z_A: float = AU_TOP_Z_A + WATER_HEIGHT_A,
    jitter_A: float = 0.0,
) -> Atoms:
    """A fragment of 2D bilayer hexagonal ice (water only, O and H).

    Parameters
    ----------
    n_rings : int
        Number of hexagonal rings of the lower layer (grown by Eden growth, fewer if the
        window is full; ``atoms.info["n_rings"]`` says how many).
    oo_distance_A : float
        In-layer O–O distance (Å), 3D (including buckling).
    rng : numpy.random.Generator or int or None
        Randomness: lattice registry, rotation, growth, defects, hydrogens.
    interlayer_A : float, optional
        Vertical distance (Å) between the layers (AA stacking); default ``oo_distance_A``.
    buckling_A : float
        Height difference (Å) between the two sublattices of each layer (0 = flat, as
        in Ma et al. 2020; the DFT first layers show ≈0.4 Å).
    rotation_deg : float, optional
        In-plane orientation of the honeycomb (degrees); random if None.
    size_A : (float, float)
        Window (Å), centred at the origin, that the whole fragment stays in.
    margin_A : float
        Distance (Å) between the window border and the outermost O (room for H).
    compactness : float
        Growth preference for sites with many occupied neighbours: large = round
        islands, 0 = ragged, branched fragments.
    upper_coverage : float
        Fraction of lower-layer molecules with a molecule on top (a connected patch);
        1 = full bilayer, 0 = a single honeycomb layer.
    n_stone_wales : int
        Number of Stone–Wales (5-7 ring) defects to attempt.
    n_vacancies, n_edge_removals : int
        Molecules removed at random / from the edge (a lower molecule goes together with
        the one on top of it).
    base_z_A : float
        Mean z (Å) of the lower-layer O.
    jitter_A : float
        Thermal jitter σ (Å); 0 = ideal positions.

    Returns
    -------
    ase.Atoms
        O, H, H per molecule; tags 1 (lower layer) and 2 (upper layer);
        ``atoms.arrays["molecule"]``; ``atoms.info`` records the parameters.
    """
    rng, seed = _as_rng(rng)
    window = _window(size_A)
    if rotation_deg is None:
        rotation_deg = float(rng.uniform(0.0, 60.0))
    o, tags, rec = _bilayer_oxygens(
        rng,
        n_rings=int(n_rings),
        oo_distance_A=float(oo_distance_A),
        interlayer_A=float(oo_distance_A if interlayer_A is None else interlayer_A),
        buckling_A=float(buckling_A),
        rotation_deg=float(rotation_deg),
        window=window,
        margin_A=float(margin_A),
        compactness=float(compactness),
        upper_coverage=float(upper_coverage),
        n_stone_wales=int(n_stone_wales),
        n_vacancies=int(n_vacancies),
        n_edge_removals=int(n_edge_removals),
        base_z_A=float(base_z_A),
    )
    atoms = _finish(o, tags, rng, jitter_A=jitter_A, window=window, substrate_z_A=base_z_A - WATER_HEIGHT_A)
    atoms.info.update(rec)
    atoms.info.update({"kind": "bilayer", "seed": -1 if seed is None else seed, "jitter_A": float(jitter_A)})
    return atoms


def water_cluster(
    n_molecules: int,
    rng=None,
    *,
    oo_distance_A: float = 2.75,
    jitter_A: float = 0.0,
) -> Atoms:
    """A small 3D water cluster (water only), lowest O at z = 0, centred at x = y = 0.

    Shapes: monomer, dimer, cyclic trimer/tetramer/pentamer, hexamer (chair ring or
    cage-like prism, at random), cubic octamer, and for other sizes a random compact
    aggregate (each molecule at most four H-bonds). ``atoms.info["shape"]`` names it.
    """
    rng, seed = _as_rng(rng)
    n = int(n_molecules)
    o, shape = _cluster_oxygens(n, rng, float(oo_distance_A))
    atoms = _finish(o, np.full(n, TAG_CLUSTER), rng, jitter_A=jitter_A, window=None, substrate_z_A=None)
    atoms.info.update({"kind": "cluster", "shape": shape, "n_molecules": n,
                       "seed": -1 if seed is None else seed})
    return atoms


@dataclass
class _Layout:
    """What every builder of :func:`generate_structure` draws from and places into."""

    rng: np.random.Generator
    window: tuple
    margin_A: float
    base_z_A: float
    oo_distance_A: float
    au_top_z_A: float
    o_parts: list = field(default_factory=list)
    tag_parts: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def bilayer_params(self, **kw) -> dict:
        return dict(
            oo_distance_A=self.oo_distance_A, interlayer_A=self.oo_distance_A,
            rotation_deg=float(self.rng.uniform(0, 60)), window=self.window, margin_A=self.margin_A,
            base_z_A=self.base_z_A, **kw,
        )

    def add(self, o: np.ndarray, tags: np.ndarray) -> None:
        self.o_parts.append(o)
        self.tag_parts.append(tags)

    def support(self) -> np.ndarray:
        return np.vstack(self.o_parts) if self.o_parts else np.zeros((0, 3))


def _build_compact_island(lay: _Layout) -> None:
    """``bilayer``: a compact, flat, full AA bilayer island of 4–12 rings."""
    rng = lay.rng
    o, t, rec = _bilayer_oxygens(rng, **lay.bilayer_params(
        n_rings=int(rng.integers(4, 13)), buckling_A=0.0, compactness=2.0,
        upper_coverage=1.0, n_stone_wales=0, n_vacancies=0, n_edge_removals=0))
    lay.add(o, t)
    lay.params.update(rec)


def _build_island(lay: _Layout, defects: bool) -> None:
    """A ragged island with defects (``bilayer_defects``) or the smaller, partly covered
    island of ``mixed``."""
    rng = lay.rng
    n_sw = int(rng.integers(0, 3)) if defects else int(rng.integers(0, 2))
    n_vac = int(rng.integers(0, 4)) if defects else int(rng.integers(0, 2))
    if defects and n_sw + n_vac == 0:
        n_sw = 1
    o, t, rec = _bilayer_oxygens(rng, **lay.bilayer_params(
        n_rings=int(rng.integers(4, 13)) if defects else int(rng.integers(1, 6)),
        buckling_A=float(rng.uniform(0.0, 0.4)),
        compactness=float(rng.uniform(0.0, 1.0)) if defects else float(rng.uniform(0.5, 2.0)),
        upper_coverage=(float(rng.uniform(0.55, 1.0)) if rng.random() < 0.5 else 1.0)
        if defects else float(rng.uniform(0.0, 1.0)),
        n_stone_wales=n_sw, n_vacancies=n_vac,
        n_edge_removals=int(rng.integers(0, 4)) if defects else 0))
    if defects and rec["n_stone_wales"] + rec["n_vacancies"] == 0:
        # no Stone–Wales site in a small island: make the defect a vacancy instead
        keep = np.ones(len(o), bool)
        up = np.flatnonzero(t == TAG_UPPER)
        victim = int(rng.choice(up)) if len(up) else int(rng.integers(len(o)))
        keep[victim] = False
        o, t = o[keep], t[keep]
        rec["n_vacancies"] = 1
        rec["n_upper" if len(up) else "n_lower"] -= 1
    lay.add(o, t)
    lay.params.update(rec)


def _build_clusters(lay: _Layout, on_island: bool) -> None:
    """One to three 3–8-molecule clusters beside the water (``cluster``), or one or two
    3–6-molecule clusters on the island's first layer or beside it (``mixed``); a single
    molecule when the window is too crowded for any."""
    rng = lay.rng
    top = lay.au_top_z_A + _MAX_WATER_TOP_A
    n_clusters = int(rng.integers(1, 3)) if on_island else int(rng.integers(1, 4))
    placed = []
    for _ in range(n_clusters):
        size = int(rng.integers(3, 7)) if on_island else int(rng.integers(3, 9))
        c, shape = _cluster_oxygens(size, rng, 2.75)
        support = lay.support()
        mode = ("on_layer" if rng.random() < 0.6 else "beside") if on_island else "beside"
        pos = _place_cluster(c, support, rng, lay.window, lay.margin_A, lay.base_z_A, top, mode, 2.75)
        if pos is None and mode == "on_layer":
            mode = "beside"
            pos = _place_cluster(c, support, rng, lay.window, lay.margin_A, lay.base_z_A, top, mode, 2.75)
        if pos is None:
            continue
        lay.add(pos, np.full(len(pos), TAG_CLUSTER))
        placed.append({"shape": shape, "n_molecules": size, "placement": mode})
    if not placed:  # the window is too crowded for a cluster: place a single molecule
        c = np.zeros((1, 3))
        support = lay.support()
        for mode in ("beside", "on_layer"):
            pos = _place_cluster(c, support, rng, lay.window, lay.margin_A, lay.base_z_A, top, mode, 2.75, 2000)
            if pos is not None:
                break
        if pos is None:
            raise ValueError(f"no room for a cluster in the window {lay.window} Å; enlarge size_A")
        lay.add(pos, np.full(1, TAG_CLUSTER))
        placed.append({"shape": "monomer", "n_molecules": 1, "placement": mode})
    lay.params["clusters"] = placed


#: kind → the builders that place its water, in order (each draws from the layout's rng)
STRUCTURE_BUILDERS = {
    "bilayer": (_build_compact_island,),
    "bilayer_defects": (functools.partial(_build_island, defects=True),),
    "cluster": (functools.partial(_build_clusters, on_island=False),),
    "mixed": (functools.partial(_build_island, defects=False), functools.partial(_build_clusters, on_island=True)),
}


def generate_structure(
    rng_or_seed=None,
    kind: str = "auto",
    size_A=(16.0, 16.0),
    *,
    jitter_A: float = 0.07,
    substrate: bool = True,
    slab_layers: int = 2,
    slab_margin_A: float = 6.0,
    au_top_z_A: float = AU_TOP_Z_A,
    water_height_A: float = WATER_HEIGHT_A,
    oo_distance_A: float = OO_DISTANCE_A,
    margin_A: float = 1.0,
    overhang_A: float = 0.0,
) -> Atoms:
    """A random water structure on Au(111), deterministic from the seed.

    Parameters
    ----------
    rng_or_seed : int or numpy.random.Generator or None
        Seed (recorded in ``atoms.info["seed"]``; -1 if a Generator was passed).
    kind : {"auto", "bilayer", "bilayer_defects", "cluster", "mixed"}
        ``bilayer``: a compact bilayer-ice island (full AA bilayer, flat layers, 4–12
        rings). ``bilayer_defects``: a ragged island with at least one defect among
        Stone–Wales 5-7 pairs, vacancies, removed edge molecules, a partial upper layer;
        layers buckled by 0–0.4 Å. ``cluster``: one to three small 3D clusters (3–8
        molecules) on the bare substrate. ``mixed``: a smaller island whose upper layer
        covers 0–100 % of it, with one or two clusters resting on its uncovered first
        layer or beside it on the substrate. ``auto`` draws a kind with probabilities
        :data:`AUTO_KIND_WEIGHTS`.
    size_A : (float, float)
        Window (Å) centred at the origin: every water atom (O and H) lies inside it, so
        a scan of this size centred at (0, 0) covers the adsorbate.
    jitter_A : float
        Thermal jitter σ (Å) of the molecules (rigid); 0 = ideal.
    substrate : bool
        Add a Au(111) slab under the water.
    slab_layers : int
        Au layers.
    slab_margin_A : float
        The slab extends this far (Å) beyond the window on each side.
    au_top_z_A : float
        z (Å) of the top Au layer (default: the DFT structures' frame).
    water_height_A : float
        Height (Å) of first-layer O above the top Au layer (DFT median 3.35 Å).
    oo_distance_A : float
        In-layer / interlayer O–O distance (Å) of the ice.
    margin_A : float
        Minimum distance (Å) from the outermost O to the border of the water window.
    overhang_A : float
        Let the water extend up to this far (Å) beyond ``size_A`` on every side (the
        water window is ``size_A + 2 * overhang_A``): islands larger than the scan, cut
        by its border, as in experiments. 0 keeps all water inside ``size_A``.

    Returns
    -------
    ase.Atoms
        Au (tag 0, if ``substrate``), then water as O, H, H per molecule (tags 1 lower
        layer, 2 upper layer, 3 cluster); ``atoms.arrays["molecule"]`` (-1 for Au);
        ``atoms.info``: kind, seed, window_A, au_top_z_A, the drawn parameters (also
        as JSON in ``params_json``).
    """
    rng, seed = _as_rng(rng_or_seed)
    if kind == "auto":
        names = list(AUTO_KIND_WEIGHTS)
        p = np.array([AUTO_KIND_WEIGHTS[k] for k in names])
        kind = names[int(rng.choice(len(names), p=p / p.sum()))]
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {('auto',) + KINDS}, got {kind!r}")
    scan_window = _window(size_A)
    if not 0.0 <= overhang_A <= 50.0:
        raise ValueError(f"overhang_A must be in [0, 50] Å, got {overhang_A}")
    window = (scan_window[0] + 2 * overhang_A, scan_window[1] + 2 * overhang_A)
    if jitter_A < 0 or jitter_A > 0.3:
        raise ValueError(f"jitter_A must be in [0, 0.3] Å (thermal motion), got {jitter_A}")
    lay = _Layout(rng, window, margin_A, au_top_z_A + water_height_A, oo_distance_A, au_top_z_A)
    for build in STRUCTURE_BUILDERS[kind]:
        build(lay)
    return _finish_structure(lay, kind, seed, scan_window, overhang_A, jitter_A, substrate, slab_layers,
                             slab_margin_A, au_top_z_A, water_height_A)


def _finish_structure(lay: _Layout, kind: str, seed, scan_window, overhang_A: float, jitter_A: float,
                      substrate: bool, slab_layers: int, slab_margin_A: float, au_top_z_A: float,
                      water_height_A: float) -> Atoms:
    """Hydrogens, jitter, the Au(111) slab and ``atoms.info`` for the placed oxygens."""
    rng, window, params = lay.rng, lay.window, lay.params
    o = np.vstack(lay.o_parts)
    tags = np.concatenate(lay.tag_parts)
    water = _finish(o, tags, rng, jitter_A=jitter_A, window=window,
                    substrate_z_A=au_top_z_A if substrate else None)
    if substrate:
        slab = au111_slab(
            (window[0] + 2 * slab_margin_A, window[1] + 2 * slab_margin_A), slab_layers,
            top_z_A=au_top_z_A, offset_A=tuple(rng.uniform(-0.5, 0.5, 2) * AU_NN_A),
        )
        atoms = slab + water
        atoms.cell = slab.cell
        atoms.pbc = False
        atoms.arrays["molecule"] = np.r_[np.full(len(slab), -1), water.arrays["molecule"]]
    else:
        atoms = water
    atoms.info.clear()
    atoms.info.update({
        "kind": kind,
        "seed": -1 if seed is None else int(seed),
        "window_x_A": float(scan_window[0]),
        "window_y_A": float(scan_window[1]),
        "overhang_A": float(overhang_A),
        "au_top_z_A": float(au_top_z_A),
        "water_height_A": float(water_height_A),
        "jitter_A": float(jitter_A),
        "n_water": int(len(o)),
        "substrate": "Au(111)" if substrate else "none",
        "params_json": json.dumps(params),
    })
    for key in ("n_rings", "n_stone_wales", "n_vacancies", "n_edge_removals", "n_lower", "n_upper",
                "upper_coverage", "buckling_A", "rotation_deg"):
        if key in params:
            atoms.info[key] = params[key]
    if "clusters" in params:
        atoms.info["n_clusters"] = len(params["clusters"])
    return atoms


def theory_reference_structures(n: int, seed: int = 0, *, kind: str = "auto", **kwargs) -> list[Atoms]:
    """``n`` generated structures for reference S_k / S_g distributions.

    Structure ``k`` is ``generate_structure(seeds[k], kind, **kwargs)`` with integer seeds
    drawn from ``seed``, so each one can be rebuilt alone from ``atoms.info["seed"]``.
    """
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n}")
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, int(n))
    return [generate_structure(int(s), kind, **kwargs) for s in seeds]


# ------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------
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
    pairs = _bond_pairs(atoms.positions[sel], cutoff_A)
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
