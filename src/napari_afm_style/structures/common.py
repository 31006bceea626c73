"""Constants of the structures (Au(111), ice geometry, tags, kinds) and small geometric
helpers."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

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
MAX_WATER_TOP_A = 8.5
# Dangling H must keep at least this far (Å) from atoms of other molecules.
DANGLING_MIN_O_A = 2.2
DANGLING_MIN_H_A = 2.0


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def as_rng(rng_or_seed) -> tuple[np.random.Generator, int | None]:
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


def window_from_size(size_A) -> tuple[float, float]:
    size = np.atleast_1d(np.asarray(size_A, dtype=float)).ravel()
    if size.size == 1:
        size = np.repeat(size, 2)
    if size.shape != (2,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"size_A must be a positive (width_x, width_y) pair in Å, got {size_A!r}")
    return float(size[0]), float(size[1])


def rot2(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1.0, n)


def random_rotation(rng: np.random.Generator, sigma_rad: float) -> np.ndarray:
    """A rotation matrix about a random axis by a Gaussian angle (sigma in radians)."""
    axis = unit(rng.normal(size=3))
    angle = rng.normal(0.0, sigma_rad)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def bond_pairs(points: np.ndarray, cutoff: float) -> np.ndarray:
    if len(points) < 2:
        return np.zeros((0, 2), dtype=int)
    pairs = cKDTree(points).query_pairs(cutoff, output_type="ndarray")
    return np.asarray(pairs, dtype=int).reshape(-1, 2)
