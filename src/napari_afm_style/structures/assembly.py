"""Assembly of water from oxygens: molecules, thermal jitter, cluster placement, and the
bilayer-ice and cluster structures."""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms

from .clusters import cluster_oxygens
from .common import (
    AU_TOP_Z_A,
    OO_DISTANCE_A,
    TAG_CLUSTER,
    WATER_HEIGHT_A,
    as_rng,
    bond_pairs,
    random_rotation,
    window_from_size,
)
from .hydrogens import assign_hydrogens
from .ice import bilayer_oxygens


def water_atoms(o: np.ndarray, h: np.ndarray, tags: np.ndarray) -> Atoms:
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


def jitter_molecules(
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
            rmat = random_rotation(rng, rot_sigma)
            o_new[i] = o[i] + d
            h_new[i] = o_new[i] + (h[i] - o[i]) @ rmat.T + np.clip(rng.normal(0, 0.01, (2, 3)), -0.03, 0.03)
        bad = set()
        pts = np.vstack([o_new, h_new.reshape(-1, 3)])
        mol = np.r_[np.arange(n), np.repeat(np.arange(n), 2)]
        is_o = np.r_[np.ones(n, bool), np.zeros(2 * n, bool)]
        for a, b in bond_pairs(pts, 2.55):
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


def place_cluster(
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


def finish_water(
    o: np.ndarray,
    tags: np.ndarray,
    rng: np.random.Generator,
    *,
    jitter_A: float,
    window: tuple[float, float] | None,
    substrate_z_A: float | None,
) -> Atoms:
    h = assign_hydrogens(o, rng, substrate_z_A=substrate_z_A)
    o, h = jitter_molecules(
        o, h, rng, jitter_A, window,
        None if substrate_z_A is None else substrate_z_A + 1.8,
    )
    return water_atoms(o, h, tags)


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
    rng, seed = as_rng(rng)
    window = window_from_size(size_A)
    if rotation_deg is None:
        rotation_deg = float(rng.uniform(0.0, 60.0))
    o, tags, rec = bilayer_oxygens(
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
    atoms = finish_water(o, tags, rng, jitter_A=jitter_A, window=window, substrate_z_A=base_z_A - WATER_HEIGHT_A)
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
    rng, seed = as_rng(rng)
    n = int(n_molecules)
    o, shape = cluster_oxygens(n, rng, float(oo_distance_A))
    atoms = finish_water(o, np.full(n, TAG_CLUSTER), rng, jitter_A=jitter_A, window=None, substrate_z_A=None)
    atoms.info.update({"kind": "cluster", "shape": shape, "n_molecules": n,
                       "seed": -1 if seed is None else seed})
    return atoms
