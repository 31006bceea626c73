"""Geometry of the generated water / bilayer-ice structures on Au(111)."""

import json

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial import cKDTree

from napari_afm_style.structures import (
    AU_NN_A,
    AU_TOP_Z_A,
    HBOND_CUTOFF_A,
    KINDS,
    TAG_CLUSTER,
    TAG_LOWER,
    TAG_SUBSTRATE,
    TAG_UPPER,
    WATER_HEIGHT_A,
    assign_hydrogens,
    au111_slab,
    bilayer_ice,
    check_geometry,
    generate_structure,
    layer_rings,
    theory_reference_structures,
    water_cluster,
)


def _water(atoms):
    return atoms[atoms.numbers != 79]


@pytest.mark.parametrize("seed", range(40))
def test_geometry_is_physical_for_many_seeds(seed):
    atoms = generate_structure(seed)
    g = check_geometry(atoms)
    assert g["n_water"] > 0
    assert np.all(g["h_per_o"] == 2)
    assert 0.9 <= g["oh_min_A"] and g["oh_max_A"] <= 1.05
    assert 100.0 <= g["hoh_min_deg"] and g["hoh_max_deg"] <= 109.0
    assert g["oo_min_A"] >= 2.5
    assert g["min_intermolecular_A"] >= 1.5
    assert g["min_water_au_A"] >= 2.0
    # first-layer O at the DFT height (3.35 Å) within jitter and buckling; nothing higher
    # than a cluster resting on a first layer
    assert g["au_top_z_A"] == pytest.approx(AU_TOP_Z_A, abs=1e-6)
    assert 2.8 <= g["o_height_min_A"] <= WATER_HEIGHT_A + 0.4
    assert g["o_height_max_A"] <= 8.5 + 0.3
    assert g["ok"]
    # the whole adsorbate lies inside the 16 × 16 Å window centred at the origin
    w = _water(atoms).positions
    assert np.all(np.abs(w[:, :2]) <= 8.0)
    assert atoms.info["kind"] in KINDS and atoms.info["seed"] == seed


def test_same_seed_same_structure_and_different_seeds_differ():
    a = generate_structure(123, "mixed")
    b = generate_structure(123, "mixed")
    c = generate_structure(124, "mixed")
    assert np.array_equal(a.numbers, b.numbers)
    assert np.allclose(a.positions, b.positions)
    assert a.info == b.info
    assert len(a) != len(c) or not np.allclose(a.positions, c.positions)
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    assert np.allclose(generate_structure(g1).positions, generate_structure(g2).positions)


@pytest.mark.parametrize("seed", range(8))
def test_bilayer_is_aa_stacked_with_four_bonds_inside(seed):
    ideal = generate_structure(seed, "bilayer", jitter_A=0.0)
    atoms = generate_structure(seed, "bilayer")  # same draws, plus the thermal jitter
    assert atoms.info["kind"] == "bilayer"
    w0, w = _water(ideal), _water(atoms)
    o0, o = w0[w0.numbers == 8], w[w.numbers == 8]
    tags = o.get_tags()
    lower, upper = o.positions[tags == TAG_LOWER], o.positions[tags == TAG_UPPER]
    assert len(lower) == len(upper) >= 6
    assert set(tags) == {TAG_LOWER, TAG_UPPER}
    # every upper molecule sits straight above a lower one, one O–O distance higher
    d, k = cKDTree(lower[:, :2]).query(upper[:, :2])
    assert np.all(d < 0.5)
    assert np.allclose(upper[:, 2] - lower[k, 2], 2.78, atol=0.45)
    assert np.median(lower[:, 2]) - AU_TOP_Z_A == pytest.approx(WATER_HEIGHT_A, abs=0.1)
    # ideal honeycomb: in-layer neighbours at 2.78 Å, rings are hexagons
    assert set(layer_rings(ideal)) == {6}
    # interior molecules (three in-layer neighbours in the ideal fragment) keep three
    # in-layer and one interlayer neighbour within 3.0 Å after the jitter
    p0, p = o0.positions, o.positions
    interior, good = 0, 0
    for i in range(len(p0)):
        same = o0.get_tags() == o0.get_tags()[i]
        r0 = np.linalg.norm(p0 - p0[i], axis=1)
        if np.sum((r0 < HBOND_CUTOFF_A) & (r0 > 0) & same) != 3:
            continue
        interior += 1
        r = np.linalg.norm(p - p[i], axis=1)
        n_in = np.sum((r < 3.0) & (r > 0) & same)
        n_inter = np.sum((r < 3.0) & ~same)
        good += n_in == 3 and n_inter == 1
    assert interior >= 4
    assert good >= 0.8 * interior


def test_bilayer_defects_contain_defects_and_5_7_rings():
    seen_57 = 0
    for seed in range(12):
        atoms = generate_structure(seed, "bilayer_defects")
        info = atoms.info
        assert info["kind"] == "bilayer_defects"
        assert info["n_stone_wales"] + info["n_vacancies"] >= 1
        rings = layer_rings(atoms)
        if info["n_stone_wales"] > 0 and any(r in (5, 7) for r in rings):
            seen_57 += 1
        assert check_geometry(atoms)["ok"]
    assert seen_57 >= 3


def test_bilayer_ice_stone_wales_makes_pentagons_and_heptagons():
    atoms = bilayer_ice(12, rng=7, size_A=(30.0, 30.0), n_stone_wales=1, rotation_deg=0.0)
    assert atoms.info["n_stone_wales"] == 1
    rings = layer_rings(atoms)
    assert rings.count(5) == 2 and rings.count(7) == 2
    perfect = bilayer_ice(12, rng=7, size_A=(30.0, 30.0), rotation_deg=0.0)
    assert set(layer_rings(perfect)) == {6}
    assert check_geometry(atoms)["ok"] and check_geometry(perfect)["ok"]


@pytest.mark.parametrize("seed", range(6))
def test_cluster_kind_is_clusters_on_gold(seed):
    atoms = generate_structure(seed, "cluster")
    w = _water(atoms)
    assert set(w.get_tags()) == {TAG_CLUSTER}
    clusters = json.loads(atoms.info["params_json"])["clusters"]
    assert 1 <= len(clusters) <= 3
    assert sum(c["n_molecules"] for c in clusters) == np.sum(w.numbers == 8)
    g = check_geometry(atoms)
    # clusters stand on the substrate at the first-layer height
    assert g["o_height_min_A"] == pytest.approx(WATER_HEIGHT_A, abs=0.35)


@pytest.mark.parametrize("seed", range(6))
def test_mixed_kind_has_layer_and_clusters(seed):
    atoms = generate_structure(seed, "mixed")
    tags = set(_water(atoms).get_tags())
    assert TAG_LOWER in tags and TAG_CLUSTER in tags
    assert check_geometry(atoms)["ok"]


def test_hydrogens_follow_ice_rules_on_a_cubic_octamer():
    side = 2.75
    sq = np.array([[0, 0, 0], [side, 0, 0], [side, side, 0], [0, side, 0]], float)
    o = np.vstack([sq, sq + [0, 0, side]])
    h, acc = assign_hydrogens(o, np.random.default_rng(3), return_donors=True)
    assert h.shape == (8, 2, 3)
    edges = {tuple(sorted(p)) for p in cKDTree(o).query_pairs(3.0)}
    assert len(edges) == 12
    donated = [tuple(sorted((i, int(j)))) for i in range(8) for j in acc[i] if j >= 0]
    # every H-bond carries exactly one H, no O accepts more than two
    assert sorted(donated) == sorted(edges)
    accepted = np.bincount([int(j) for j in acc.ravel() if j >= 0], minlength=8)
    assert accepted.max() <= 2
    # 12 bonded H + 4 dangling; bonded H lie near their O–O line
    assert np.sum(acc < 0) == 4
    for i in range(8):
        for k in range(2):
            v = h[i, k] - o[i]
            assert np.linalg.norm(v) == pytest.approx(0.98, abs=1e-6)
            if acc[i, k] >= 0:
                u = o[acc[i, k]] - o[i]
                cosang = v @ u / np.linalg.norm(v) / np.linalg.norm(u)
                assert cosang > np.cos(np.radians(30))


def test_hydrogens_in_a_full_bilayer_are_all_bonded_inside():
    atoms = bilayer_ice(9, rng=2, size_A=(24.0, 24.0))
    g = check_geometry(atoms)
    assert g["ok"]
    o = atoms.positions[atoms.numbers == 8]
    _, acc = assign_hydrogens(o, np.random.default_rng(0), return_donors=True)
    deg = np.array([len(cKDTree(o).query_ball_point(p, HBOND_CUTOFF_A)) - 1 for p in o])
    # four-coordinated molecules donate two H-bonds and have no dangling H
    assert np.all(acc[deg == 4] >= 0)
    assert np.sum(deg == 4) >= 4
    # every H-bond has exactly one H (Bernal–Fowler)
    donated = [tuple(sorted((i, int(j)))) for i in range(len(o)) for j in acc[i] if j >= 0]
    assert len(donated) == len(set(donated))
    assert len(set(donated)) == len(cKDTree(o).query_pairs(HBOND_CUTOFF_A))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 10])
def test_water_cluster_sizes(n):
    atoms = water_cluster(n, np.random.default_rng(n))
    assert np.sum(atoms.numbers == 8) == n and np.sum(atoms.numbers == 1) == 2 * n
    o = atoms.positions[atoms.numbers == 8]
    assert o[:, 2].min() == pytest.approx(0.0, abs=1e-9)
    g = check_geometry(atoms)
    assert g["ok"], g
    if n >= 3:
        assert len(cKDTree(o).query_pairs(3.0)) >= n  # a connected, H-bonded cluster


def test_au111_slab_geometry():
    slab = au111_slab((20.0, 18.0), layers=3, top_z_A=1.5)
    p = slab.positions
    assert set(slab.numbers) == {79} and set(slab.get_tags()) == {TAG_SUBSTRATE}
    d, _ = cKDTree(p).query(p, k=2)
    assert np.allclose(d[:, 1], AU_NN_A, atol=1e-6)
    assert AU_NN_A == pytest.approx(2.884, abs=1e-3)
    zs = np.unique(np.round(p[:, 2], 6))
    assert len(zs) == 3 and zs.max() == pytest.approx(1.5)
    assert np.allclose(np.diff(zs), 4.078 / np.sqrt(3), atol=1e-6)
    assert p[:, 0].max() - p[:, 0].min() >= 20.0 - AU_NN_A
    assert p[:, 1].max() - p[:, 1].min() >= 18.0 - AU_NN_A
    assert np.allclose(p[:, :2].mean(axis=0), 0.0, atol=1.5)


def test_structure_has_slab_under_the_window():
    atoms = generate_structure(3, "bilayer")
    au = atoms.positions[atoms.numbers == 79]
    assert np.sum(au[:, 2] > AU_TOP_Z_A - 0.1) > 0
    assert au[:, 0].min() < -12 and au[:, 0].max() > 12
    assert au[:, 1].min() < -12 and au[:, 1].max() > 12
    assert np.all(atoms.arrays["molecule"][atoms.numbers == 79] == -1)
    no_au = generate_structure(3, "bilayer", substrate=False)
    assert 79 not in no_au.numbers


def test_overhang_lets_islands_extend_beyond_the_scan():
    atoms = generate_structure(1, "bilayer", overhang_A=6.0)
    w = _water(atoms).positions
    assert np.abs(w[:, :2]).max() <= 14.0
    assert atoms.info["overhang_A"] == 6.0 and atoms.info["window_x_A"] == 16.0


def test_theory_reference_structures_are_reproducible_one_by_one():
    structs = theory_reference_structures(3, seed=11)
    assert len(structs) == 3
    again = generate_structure(structs[1].info["seed"], "auto")
    assert np.allclose(again.positions, structs[1].positions)
    assert theory_reference_structures(0) == []


def test_written_and_read_back(tmp_path):
    from napari_afm_style.io import read_atoms, write_atoms

    atoms = generate_structure(4)
    path = write_atoms(atoms, tmp_path / "s.xyz")
    back = read_atoms(path)
    assert np.allclose(back.positions, atoms.positions, atol=1e-5)
    assert back.info["kind"] == atoms.info["kind"]


def test_check_geometry_detects_broken_structures():
    good = water_cluster(3, 0)
    assert check_geometry(good)["ok"]
    clash = good.copy()
    clash.positions[3:6] = clash.positions[0:3] + [1.0, 0, 0]  # two molecules 1 Å apart
    assert not check_geometry(clash)["ok"]
    missing_h = Atoms("OHOHH", positions=[[0, 0, 0], [0.98, 0, 0], [5, 0, 0], [5.98, 0, 0], [5, 0.98, 0]])
    g = check_geometry(missing_h)
    assert list(g["h_per_o"]) == [1, 2] and not g["ok"]


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="kind"):
        generate_structure(0, "ice_vii")
    with pytest.raises(ValueError, match="size_A"):
        generate_structure(0, "bilayer", size_A=(-1, 16))
    with pytest.raises(ValueError, match="too small"):
        bilayer_ice(3, rng=0, size_A=(5.0, 5.0))
    with pytest.raises(ValueError, match="seed"):
        generate_structure(-3)
    with pytest.raises(ValueError, match="apart"):
        assign_hydrogens([[0, 0, 0], [0.5, 0, 0]], 0)


def test_every_kind_has_its_builders():
    from napari_afm_style.structures import KINDS, STRUCTURE_BUILDERS

    assert set(STRUCTURE_BUILDERS) == set(KINDS)
