"""Random structures by kind: one small builder per kind (:data:`STRUCTURE_BUILDERS`)
behind :func:`generate_structure`."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from .assembly import finish_water, place_cluster
from .clusters import cluster_oxygens
from .common import (
    AU_NN_A,
    AU_TOP_Z_A,
    AUTO_KIND_WEIGHTS,
    KINDS,
    MAX_WATER_TOP_A,
    OO_DISTANCE_A,
    TAG_CLUSTER,
    TAG_UPPER,
    WATER_HEIGHT_A,
    as_rng,
    window_from_size,
)
from .ice import bilayer_oxygens
from .substrate import au111_slab


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
    o, t, rec = bilayer_oxygens(rng, **lay.bilayer_params(
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
    o, t, rec = bilayer_oxygens(rng, **lay.bilayer_params(
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
    top = lay.au_top_z_A + MAX_WATER_TOP_A
    n_clusters = int(rng.integers(1, 3)) if on_island else int(rng.integers(1, 4))
    placed = []
    for _ in range(n_clusters):
        size = int(rng.integers(3, 7)) if on_island else int(rng.integers(3, 9))
        c, shape = cluster_oxygens(size, rng, 2.75)
        support = lay.support()
        mode = ("on_layer" if rng.random() < 0.6 else "beside") if on_island else "beside"
        pos = place_cluster(c, support, rng, lay.window, lay.margin_A, lay.base_z_A, top, mode, 2.75)
        if pos is None and mode == "on_layer":
            mode = "beside"
            pos = place_cluster(c, support, rng, lay.window, lay.margin_A, lay.base_z_A, top, mode, 2.75)
        if pos is None:
            continue
        lay.add(pos, np.full(len(pos), TAG_CLUSTER))
        placed.append({"shape": shape, "n_molecules": size, "placement": mode})
    if not placed:  # the window is too crowded for a cluster: place a single molecule
        c = np.zeros((1, 3))
        support = lay.support()
        for mode in ("beside", "on_layer"):
            pos = place_cluster(c, support, rng, lay.window, lay.margin_A, lay.base_z_A, top, mode, 2.75, 2000)
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
    rng, seed = as_rng(rng_or_seed)
    if kind == "auto":
        names = list(AUTO_KIND_WEIGHTS)
        p = np.array([AUTO_KIND_WEIGHTS[k] for k in names])
        kind = names[int(rng.choice(len(names), p=p / p.sum()))]
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {('auto',) + KINDS}, got {kind!r}")
    scan_window = window_from_size(size_A)
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
    water = finish_water(o, tags, rng, jitter_A=jitter_A, window=window,
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
