"""Hydrogens by the Bernal–Fowler ice rules: an Euler orientation of the H-bond graph,
dangling H away from neighbours, and a relaxation of the orientations."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from .common import (
    DANGLING_MIN_H_A,
    DANGLING_MIN_O_A,
    HBOND_CUTOFF_A,
    HOH_ANGLE_DEG,
    OH_BOND_A,
    as_rng,
    bond_pairs,
    random_rotation,
    unit,
)


def euler_orientation(
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


def fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    r = np.sqrt(1 - z * z)
    phi = math.pi * (3 - math.sqrt(5)) * k
    return np.c_[r * np.cos(phi), r * np.sin(phi), z]


def cone(axis: np.ndarray, angle_rad: float, n: int = 72) -> np.ndarray:
    """Unit vectors at ``angle_rad`` from ``axis``."""
    axis = unit(axis)
    helper = np.array([1.0, 0, 0]) if abs(axis[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = unit(np.cross(axis, helper))
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
    rng, _ = as_rng(rng)
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
    pairs = bond_pairs(o, cutoff_A)
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
    orient = euler_orientation(n + 1, edges, rng, flips)
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
            a = unit(o[acceptors[i, 0]] - o[i])
            b = unit(o[acceptors[i, 1]] - o[i])
            m = unit(a + b)
            p = a - b
            p = unit(p - np.dot(p, m) * m)
            for k, s in enumerate((1.0, -1.0)):
                h[i, k] = o[i] + oh_A * (math.cos(theta / 2) * m + s * math.sin(theta / 2) * p)
    # 2) one H-bond H on its O–O line
    for i in range(n):
        if acceptors[i, 0] >= 0 and acceptors[i, 1] < 0:
            h[i, 0] = o[i] + oh_A * unit(o[acceptors[i, 0]] - o[i])
    # 3) dangling H, in random order, avoiding everything placed so far
    sphere = fibonacci_sphere(96)
    for i in rng.permutation(n):
        if acceptors[i, 1] >= 0:
            continue
        nb = [j for j in tree.query_ball_point(o[i], 3.6) if j != i]
        nb_dirs = unit(o[nb] - o[i]) if nb else np.zeros((0, 3))
        placed = h[np.isfinite(h[:, :, 0])]
        others_h = placed[np.linalg.norm(placed - o[i], axis=1) > 1.2] if len(placed) else placed

        def score(dirs):
            p = o[i] + oh_A * dirs
            s = 0.6 * dirs[:, 2] + 0.02 * rng.normal(size=len(dirs))
            if len(nb_dirs):
                cosang = dirs @ nb_dirs.T
                s -= 3.0 * np.sum(np.exp(-(1 - cosang) / 0.12), axis=1)
                dist_o = np.linalg.norm(p[:, None, :] - o[nb][None], axis=2).min(axis=1)
                s -= 10.0 * np.clip(DANGLING_MIN_O_A - dist_o, 0, None)
            if len(others_h):
                dist_h = np.linalg.norm(p[:, None, :] - others_h[None], axis=2).min(axis=1)
                s -= 10.0 * np.clip(DANGLING_MIN_H_A - dist_h, 0, None)
            if substrate_z_A is not None:
                s -= 10.0 * np.clip(substrate_z_A + 2.0 - p[:, 2], 0, None)
            return s

        if acceptors[i, 0] >= 0:
            a = unit(h[i, 0] - o[i])
            cand = cone(a, theta)
            h[i, 1] = o[i] + oh_A * cand[int(np.argmax(score(cand)))]
        else:
            # two dangling H: best first direction whose best partner on the cone is good
            first = sphere @ random_rotation(rng, math.pi).T
            s1 = score(first)
            best = (-np.inf, None, None)
            for k in np.argsort(s1)[::-1][:12]:
                cand = cone(first[k], theta, 36)
                s2 = score(cand)
                j = int(np.argmax(s2))
                if s1[k] + s2[j] > best[0]:
                    best = (s1[k] + s2[j], first[k], cand[j])
            h[i, 0] = o[i] + oh_A * best[1]
            h[i, 1] = o[i] + oh_A * best[2]
    h = relax_orientations(o, h, acceptors, rng, substrate_z_A)
    if return_donors:
        return h, acceptors
    return h


def relax_orientations(
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
        v = unit(hi - o[i])
        c = np.zeros(len(hi))
        for k in range(2):
            j = acceptors[i, k]
            if j >= 0:
                c += 4.0 * (1.0 - v[:, k] @ unit(o[j] - o[i]))
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
        for a, b in bond_pairs(hp, 1.9):
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
            trials = [rel] + [rel @ random_rotation(rng, math.radians(25.0)).T for _ in range(n_trials)]
            cand = o[i] + np.array(trials)
            h[i] = cand[int(np.argmin(cost(i, cand)))]
    return h
