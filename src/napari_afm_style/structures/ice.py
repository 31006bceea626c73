"""Bilayer hexagonal ice: honeycomb fragments grown ring by ring, Stone–Wales 5-7 defects,
a spring relaxation, and the oxygens of a (defective) bilayer."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

from .common import TAG_LOWER, TAG_UPPER, bond_pairs, rot2

CELL_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1))


def grow_honeycomb(
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
    rot = rot2(rotation_rad)
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
            for d in CELL_NEIGHBOURS:
                nb = (c[0] + d[0], c[1] + d[1])
                if nb in ok_set and nb not in occupied:
                    frontier[nb] = sum(
                        (nb[0] + e[0], nb[1] + e[1]) in occupied for e in CELL_NEIGHBOURS
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


def relax_layer(
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
    for i, j in bond_pairs(xy, 4.5):
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


def stone_wales(
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
        r90 = rot2(math.pi / 2)
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
        relaxed = relax_layer(new_xy, new_adj, lateral_A)
        if layer_ok(relaxed, new_adj, lateral_A) and np.all(np.abs(relaxed) <= half_window):
            xy, adjacency = relaxed, new_adj
            touched |= {u, v} | set(a) | set(b)
            done += 1
    return xy, adjacency, done


def layer_ok(xy: np.ndarray, adjacency: list[set[int]], lateral_A: float) -> bool:
    for i, j in bond_pairs(xy, 4.0):
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


def bilayer_oxygens(
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
    xy, sub, adj, grown = grow_honeycomb(
        n_rings, lateral, math.radians(rotation_deg), window, margin_A, compactness, rng
    )
    half = np.array(window) / 2 - margin_A
    xy, adj, n_sw = stone_wales(xy, adj, n_stone_wales, lateral, rng, half)
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
