"""Small 3D water clusters: cyclic rings, the prism hexamer, the cubic octamer and random
compact aggregates."""

from __future__ import annotations

import math

import numpy as np

from .common import HBOND_CUTOFF_A, random_rotation, rot2, unit


def ring_oxygens(n: int, oo: float, pucker_A: float) -> np.ndarray:
    r = oo / (2 * math.sin(math.pi / n))
    t = 2 * math.pi * np.arange(n) / n
    z = pucker_A * np.where(np.arange(n) % 2 == 0, 1.0, -1.0) if n % 2 == 0 else np.zeros(n)
    return np.c_[r * np.cos(t), r * np.sin(t), z]


def cluster_oxygens(n: int, rng: np.random.Generator, oo: float) -> tuple[np.ndarray, str]:
    """O positions of an n-molecule cluster (lowest O at z = 0, centred laterally)."""
    if n < 1:
        raise ValueError(f"n_molecules must be at least 1, got {n}")
    if n == 1:
        pos, shape = np.zeros((1, 3)), "monomer"
    elif n == 2:
        pos, shape = np.array([[0.0, 0, 0], [oo, 0, 0]]), "dimer"
    elif n in (3, 4, 5):
        name = ("trimer", "tetramer", "pentamer")[n - 3]
        pos, shape = ring_oxygens(n, oo, 0.25 if n == 4 else 0.0), f"cyclic {name}"
    elif n == 6 and rng.random() < 0.5:
        pos, shape = ring_oxygens(6, oo, 0.3), "cyclic hexamer (chair)"
    elif n == 6:
        tri = ring_oxygens(3, oo, 0.0)
        pos, shape = np.vstack([tri, tri + [0, 0, oo]]), "prism hexamer (cage-like)"
    elif n == 8:
        sq = ring_oxygens(4, oo, 0.0)
        pos, shape = np.vstack([sq, sq + [0, 0, oo]]), "cubic octamer"
    else:
        pos, shape = aggregate_oxygens(n, rng, oo), f"compact aggregate ({n})"
    # random in-plane orientation and a small tilt: clusters rest on a surface
    tilt = random_rotation(rng, math.radians(6.0))
    pos = pos @ tilt.T
    pos[:, :2] = pos[:, :2] @ rot2(rng.uniform(0, 2 * math.pi)).T
    pos -= [pos[:, 0].mean(), pos[:, 1].mean(), pos[:, 2].min()]
    return pos, shape


def aggregate_oxygens(n: int, rng: np.random.Generator, oo: float) -> np.ndarray:
    """Random compact aggregate: add molecules one by one at the H-bond distance from an
    existing one, preferring sites with many neighbours, never more than four each."""
    pos = [np.zeros(3)]
    while len(pos) < n:
        p = np.array(pos)
        best, best_score = None, -1.0
        for _ in range(60):
            d = unit(rng.normal(size=3))
            d[2] = abs(d[2]) * 0.5  # grow mostly sideways on the surface, not into it
            cand = p[int(rng.integers(len(p)))] + oo * unit(d)
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
