"""Tetrahedral order S_k / S_g, reference distributions and distances (napari_afm_style.order)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from ase import Atoms

from napari_afm_style import order
from napari_afm_style.order import (
    emd_2d,
    histogram_data,
    mmd2_unbiased,
    order_distances,
    reference_distribution,
    reference_metadata,
    tetrahedral_order,
    tetrahedral_order_report,
    write_order_csv,
)

#: Unit vectors to the vertices of a regular tetrahedron.
TET = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) / np.sqrt(3)


def ideal_ice_ih(nx: int, ny: int, nz: int, d_A: float = 2.76) -> np.ndarray:
    """O sites of ideal hexagonal ice (every O has four neighbours at ``d_A``, 109.47°)."""
    c = 8.0 * d_A / 3.0  # the bond along c spans 3/8 of the cell
    a = c / np.sqrt(8.0 / 3.0)
    z = 1.0 / 16.0
    frac = np.array([[1 / 3, 2 / 3, z], [2 / 3, 1 / 3, z + 0.5], [2 / 3, 1 / 3, -z], [1 / 3, 2 / 3, 0.5 - z]])
    cell = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]])
    shifts = np.array(list(itertools.product(range(nx), range(ny), range(nz))), float)
    f = (shifts[:, None, :] + frac[None]).reshape(-1, 3)
    return f @ cell


def naive_order(pos: np.ndarray, cutoff: float):
    """Independent brute-force implementation (per atom, angles via arccos)."""
    idx, sk, sg = [], [], []
    for i in range(len(pos)):
        d = np.linalg.norm(pos - pos[i], axis=1)
        d[i] = np.inf
        nb = np.argsort(d, kind="stable")[:4]
        if np.sum(d <= cutoff) < 4:
            continue
        r = d[nb]
        rbar = r.mean()
        idx.append(i)
        sk.append(sum((rk - rbar) ** 2 / (4 * rbar**2) for rk in r) / 3)
        v = pos[nb] - pos[i]
        s = 0.0
        for j in range(4):
            for k in range(j + 1, 4):
                psi = np.arccos(np.clip(v[j] @ v[k] / (r[j] * r[k]), -1, 1))
                s += (np.cos(psi) + 1 / 3) ** 2
        sg.append(3 / 8 * s)
    return np.array(idx), np.array(sk), np.array(sg)


# ----------------------------------------------------------------- analytic values


def test_perfect_tetrahedron_is_zero():
    pos = np.vstack([[0, 0, 0], 2.76 * TET]) + [5.0, -3.0, 12.0]
    rep = tetrahedral_order_report(pos)
    # Vertex–vertex distance is 2.76·√(8/3) = 4.5 Å > 3.5 Å: only the centre counts.
    assert rep.centre_indices.tolist() == [0]
    assert rep.n_centres == 1 and rep.n_excluded == 4 and rep.n_oxygen == 5
    assert abs(rep.S_k[0]) < 1e-15
    assert abs(rep.S_g[0]) < 1e-14
    idx, S_k, S_g = tetrahedral_order(pos)
    assert idx.tolist() == [0] and S_k.shape == S_g.shape == (1,)


def test_bilayer_ice_geometry_analytic_sg():
    d = 2.8
    ang = np.deg2rad([0.0, 120.0, 240.0])
    plane = np.column_stack([np.cos(ang), np.sin(ang), np.zeros(3)])
    pos = np.vstack([[0, 0, 0], d * plane, [0, 0, d]])
    idx, S_k, S_g = tetrahedral_order(pos)
    assert idx.tolist() == [0]
    # In-plane pairs cos ψ = −1/2, pairs with the perpendicular bond cos ψ = 0:
    # 3/8 [3 (−1/2 + 1/3)² + 3 (1/3)²] = 3/8 · 15/36.
    assert S_g[0] == pytest.approx(0.15625, rel=1e-13, abs=0)
    assert S_g[0] == pytest.approx(3 / 8 * 15 / 36, rel=1e-13, abs=0)
    assert abs(S_k[0]) < 1e-15


def test_unequal_distances_analytic_sk():
    r = np.array([2.6, 2.8, 2.8, 3.0])
    pos = np.vstack([[0, 0, 0], r[:, None] * TET])
    idx, S_k, S_g = tetrahedral_order(pos)
    assert idx.tolist() == [0]
    rbar = r.mean()
    expected = np.sum((r - rbar) ** 2) / (4 * rbar**2) / 3  # = 0.08 / 94.08
    assert S_k[0] == pytest.approx(expected, rel=1e-12)
    assert S_k[0] == pytest.approx(0.08 / 94.08, rel=1e-12)
    assert abs(S_g[0]) < 1e-14  # the directions are still tetrahedral


def test_ideal_ice_lattice_is_perfectly_tetrahedral():
    pos = ideal_ice_ih(4, 4, 3)
    rep = tetrahedral_order_report(pos)
    # Every interior O has four neighbours at 2.76 Å; the next shell is at 4.5 Å.
    assert rep.n_centres > 0.3 * len(pos)
    np.testing.assert_allclose(rep.S_k, 0.0, atol=1e-14)
    np.testing.assert_allclose(rep.S_g, 0.0, atol=1e-12)
    np.testing.assert_allclose(rep.neighbour_distances_A, 2.76, rtol=1e-12)
    # Surface atoms miss neighbours: counts must add up.
    assert rep.n_centres + rep.n_excluded == len(pos)


def test_poisson_gas_has_mean_sg_one():
    # For an ideal gas the directions to the nearest neighbours are independent and
    # uniform, so E[(cos ψ + 1/3)²] = 1/3 + 1/9 and ⟨S_g⟩ = 3/8 · 6 · 4/9 = 1.
    rng = np.random.default_rng(1)
    L = 40.0
    pos = rng.uniform(0, L, (int(0.1 * L**3), 3))  # 18 neighbours within 3.5 Å on average
    idx, S_k, S_g = tetrahedral_order(pos)
    c = pos[idx]
    interior = np.all((c > 3.5) & (c < L - 3.5), axis=1)  # no wall bias
    assert interior.sum() > 2500
    assert np.mean(S_g[interior]) == pytest.approx(1.0, abs=0.05)
    assert np.all(S_k >= 0) and np.all(S_g >= 0)


def test_matches_naive_implementation():
    rng = np.random.default_rng(7)
    pos = rng.uniform(0, 14, (300, 3))
    idx, S_k, S_g = tetrahedral_order(pos, cutoff=3.0)
    nidx, nsk, nsg = naive_order(pos, 3.0)
    assert 0 < len(idx) < len(pos)
    np.testing.assert_array_equal(idx, nidx)
    np.testing.assert_allclose(S_k, nsk, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(S_g, nsg, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------- counts and cutoff


def test_excluded_count():
    tet = np.vstack([[0, 0, 0], 2.76 * TET])
    lone = np.array([[50.0, 0, 0], [50.0, 2.9, 0], [80.0, 0, 0]])
    pos = np.vstack([tet, tet + [20.0, 0, 0], lone])
    rep = tetrahedral_order_report(pos)
    assert rep.centre_indices.tolist() == [0, 5]
    assert rep.n_oxygen == 13 and rep.n_centres == 2 and rep.n_excluded == 11
    assert rep.fraction_included == pytest.approx(2 / 13)
    assert rep.summary()["n_excluded"] == 11


@pytest.mark.parametrize("r4, inside", [(3.49, True), (3.5, True), (3.51, False)])
def test_cutoff_respected(r4, inside):
    r = np.array([2.8, 2.8, 2.8, r4])
    pos = np.vstack([[0, 0, 0], r[:, None] * TET])
    idx, _, _ = tetrahedral_order(pos, cutoff=3.5)
    assert (idx.tolist() == [0]) is inside
    idx, _, _ = tetrahedral_order(pos, cutoff=2.7)
    assert idx.size == 0


def test_only_four_nearest_neighbours_used():
    # A fifth O at 3.3 Å (inside the cutoff) must not change the values.
    pos = np.vstack([[0, 0, 0], 2.8 * TET, [[0, 0, 3.3]]])
    rep = tetrahedral_order_report(pos)
    assert 0 in rep.centre_indices
    i = int(np.flatnonzero(rep.centre_indices == 0)[0])
    assert set(rep.neighbour_indices[i].tolist()) == {1, 2, 3, 4}
    assert abs(rep.S_g[i]) < 1e-14 and abs(rep.S_k[i]) < 1e-15


def test_small_and_empty_inputs():
    for n in (0, 1, 4):
        rep = tetrahedral_order_report(np.arange(3 * n, dtype=float).reshape(n, 3) * 1.5)
        assert rep.n_centres == 0 and rep.n_excluded == n


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((5, 2)), r"\(N, 3\)"),
        (np.zeros(3), r"\(N, 3\)"),
        (np.array([[0, 0, 0], [np.nan, 1, 1]]), "NaN"),
        (np.array([[0, 0, 0], [1, 1, np.inf]]), "NaN or infinite"),
        (np.array([[0, 0, 0], [0, 0, 0], [1, 1, 1]]), "same place"),
        ([["a", "b", "c"]], r"\(N, 3\)"),
    ],
)
def test_bad_positions(bad, match):
    with pytest.raises(ValueError, match=match):
        tetrahedral_order(bad)


@pytest.mark.parametrize("cutoff", [0, -1.0, float("nan"), "x"])
def test_bad_cutoff(cutoff):
    with pytest.raises(ValueError, match="cutoff"):
        tetrahedral_order(np.zeros((1, 3)), cutoff=cutoff)


# ---------------------------------------------------------------------- reference


def test_shipped_reference():
    meta = reference_metadata()
    assert meta["cutoff_A"] == 3.5
    assert {"theory", "theory_static"} <= set(order.available_references())
    for name in order.available_references():  # every shipped set loads and is sane
        k, g = reference_distribution(name)
        assert k.size == g.size == meta["sets"][name]["n_centres"] > 0
        assert np.all(np.isfinite(k)) and np.all(np.isfinite(g))
    sk, sg = reference_distribution("theory")
    assert sk.dtype == np.float64 and sk.shape == sg.shape
    assert sk.size == meta["sets"]["theory"]["n_centres"] > 1000
    assert np.all(sk >= 0) and np.all(sg >= 0)
    # Water on Au(111) is far from an ideal gas (⟨S_g⟩ = 1) and from ice (0).
    assert 0.1 < sg.mean() < 0.6
    assert meta["sets"]["theory"]["S_g_mean"] == pytest.approx(sg.mean(), rel=1e-5)
    stat = meta["sets"]["theory_static"]
    assert stat["n_centres"] / stat["n_O"] == pytest.approx(0.18, abs=0.02)  # the README's 18 %
    with pytest.raises(ValueError, match="unknown reference"):
        reference_distribution("nonsense")
    path = order.resources.files("napari_afm_style") / "data" / "reference_order.npz"
    assert path.stat().st_size < 1_000_000


# ---------------------------------------------------------------------- distances


def test_emd_2d_translation_is_exact():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(37, 2))
    v = np.array([0.3, -0.4])
    d, method = emd_2d(a, a + v)
    assert method == "exact" and d == pytest.approx(0.5, rel=1e-12)
    # Unequal sizes, same distribution: each point twice → 0, exactly.
    d, method = emd_2d(a, np.repeat(a, 2, axis=0))
    assert method == "exact" and d == pytest.approx(0.0, abs=1e-15)
    # Subsampled path is deterministic for a given seed, and says what it did.
    b = rng.normal(size=(1500, 2))
    assert emd_2d(a[:7], b, max_points=300, seed=1) == emd_2d(a[:7], b, max_points=300, seed=1)
    assert emd_2d(a[:7], b, max_points=300)[1] == "exact on a random 300 of 1500"


def test_emd_2d_of_sizes_that_do_not_divide_equals_the_transport_linear_program():
    from scipy.optimize import linprog
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(7, 2)), rng.normal(0.5, 1.0, size=(11, 2))
    cost = cdist(a, b)
    n, m = cost.shape
    rows = np.kron(np.eye(n), np.ones(m))  # each a-point sends 1/n
    cols = np.kron(np.ones(n), np.eye(m))  # each b-point receives 1/m
    lp = linprog(cost.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.r_[np.full(n, 1 / n), np.full(m, 1 / m)],
                 bounds=(0, None), method="highs")
    d, method = emd_2d(a, b)
    assert method == "exact" and d == pytest.approx(lp.fun, rel=1e-9)
    # the old assignment on replicated points could not do this without lcm(7, 11) = 77 copies


def test_mmd_detects_shift_not_resampling():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(400, 2)), rng.normal(size=(400, 2))
    same, bw = mmd2_unbiased(x, y)
    shifted, _ = mmd2_unbiased(x, y + [1.0, 0.0])
    assert bw > 0
    assert abs(same) < 0.01 < shifted


def test_distance_to_itself_is_zero():
    rng = np.random.default_rng(5)
    pos = ideal_ice_ih(3, 3, 3) + rng.normal(0, 0.1, (108, 3))
    res = order_distances(pos, reference=pos)
    assert res["n_centres"] > 10
    assert res["wasserstein_S_k"] == 0.0 and res["wasserstein_S_g"] == 0.0
    assert res["emd_2d"] == pytest.approx(0.0, abs=1e-12) and res["emd_2d_method"] == "exact"
    assert abs(res["mmd2"]) < 0.05
    # Same with ready samples as the reference.
    _, sk, sg = tetrahedral_order(pos)
    res2 = order_distances(pos, reference=(sk, sg))
    assert res2["wasserstein_S_g"] == 0.0 and res2["n_reference"] == sk.size


def test_reference_shaped_sample_is_close_and_gas_is_far():
    # Prediction and reference: two thermal realisations of the same ice crystal.
    rng = np.random.default_rng(6)
    ice = ideal_ice_ih(5, 5, 3)
    pred = Atoms(numbers=[8] * len(ice), positions=ice + rng.normal(0, 0.12, ice.shape))
    ref = [Atoms(numbers=[8] * len(ice), positions=ice + rng.normal(0, 0.12, ice.shape)) for _ in range(3)]
    near = order_distances(pred, reference=ref)
    L = 25.0
    gas = rng.uniform(0, L, (int(0.0307 * L**3), 3))  # liquid-water density, no structure
    far = order_distances(gas, reference=ref)
    assert near["n_O"] == len(ice) and near["n_reference"] > 2 * near["n_centres"]
    assert near["wasserstein_S_g"] < 0.2 * far["wasserstein_S_g"]
    assert near["wasserstein_S_k"] < 0.2 * far["wasserstein_S_k"]
    assert near["emd_2d"] < 0.2 * far["emd_2d"]
    assert near["mmd2"] < 0.1 * far["mmd2"]


def test_order_distances_with_shipped_theory_uses_O_only():
    rng = np.random.default_rng(8)
    ice = ideal_ice_ih(3, 3, 2) + rng.normal(0, 0.05, (72, 3))
    # Au and H atoms must be ignored.
    atoms = Atoms(numbers=[79] * 5 + [8] * 72 + [1] * 3,
                  positions=np.vstack([rng.uniform(-5, 0, (5, 3)), ice, ice[:3] + 0.97]))
    res = order_distances(atoms)  # reference="theory"
    assert res["n_O"] == 72 and res["reference"] == "theory"
    assert res["n_reference"] == reference_metadata()["sets"]["theory"]["n_centres"]
    for key in ("wasserstein_S_k", "wasserstein_S_g", "emd_2d", "mmd2"):
        assert np.isfinite(res[key])
    assert res["n_centres"] + res["n_excluded"] == 72
    # Ice is much more ordered than water on Au: S_g distance ≈ the theory mean.
    assert res["wasserstein_S_g"] > 0.2
    json.dumps(res)  # JSON-friendly


def test_order_distances_no_centres_and_bad_reference():
    res = order_distances(np.array([[0.0, 0, 0], [10, 0, 0]]))
    assert res["n_centres"] == 0 and res["n_excluded"] == 2 and np.isnan(res["emd_2d"])
    with pytest.raises(ValueError, match="neither a shipped"):
        order_distances(np.zeros((1, 3)), reference="no_such_reference")
    with pytest.raises(ValueError, match="reference must be"):
        order_distances(np.zeros((1, 3)), reference=(np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        order_distances(np.zeros((4, 2)))


def test_histogram_data():
    sk, sg = reference_distribution("theory")
    h = histogram_data(sk[:200], sg[:200], reference="theory", bins=(20, 25))
    for key, nb in (("S_k", 20), ("S_g", 25)):
        e = h[key]["edges"]
        assert e.size == nb + 1 and e[0] == 0.0
        for which in ("prediction", "reference"):
            assert np.sum(h[key][which] * np.diff(e)) == pytest.approx(1.0)
    assert h["joint"]["prediction"].shape == (20, 25)
    assert h["n_prediction"] == 200 and h["n_reference"] == sk.size
    h0 = histogram_data([0.001], [0.2], reference=None, bins=5)
    assert h0["S_g"]["reference"] is None


# ---------------------------------------------------------------------- CSV / CLI


def _write_xyz(path, numbers, positions):
    lines = [str(len(numbers)), "tiny test geometry"]
    lines += [f"{z} {x:.6f} {y:.6f} {w:.6f}" for z, (x, y, w) in zip(numbers, positions)]
    path.write_text("\n".join(lines) + "\n")


def test_write_order_csv_refuses_foreign_file(tmp_path):
    p = tmp_path / "notes.csv"
    p.write_text("my,precious,data\n")
    with pytest.raises(FileExistsError):
        write_order_csv(p, [0], [0.0], [0.0])
    with pytest.raises(ValueError, match=".csv"):
        write_order_csv(tmp_path / "x.txt", [0], [0.0], [0.0])


def test_cli_order(tmp_path, capsys):
    from napari_afm_style.cli import main

    rng = np.random.default_rng(9)
    ice = ideal_ice_ih(3, 3, 2) + rng.normal(0, 0.05, (72, 3))
    numbers = [79, 79] + [8] * 72
    positions = np.vstack([[[0, 0, -3.0], [2.9, 0, -3.0]], ice])
    f = tmp_path / "tiny.xyz"
    _write_xyz(f, numbers, positions)
    out_csv = tmp_path / "order.csv"
    assert main(["order", str(f), "--csv", str(out_csv)]) == 0
    text = capsys.readouterr().out
    from napari_afm_style.io import read_atoms

    atoms = read_atoms(f)
    rep = tetrahedral_order_report(atoms.positions[atoms.numbers == 8])  # as written (6 decimals)
    assert f"72 O atoms; {rep.n_centres} with four O neighbours" in text
    assert f"{rep.n_excluded} excluded" in text
    assert f"{rep.S_g.mean():.5f}" in text and "Wasserstein S_g" in text and "MMD²" in text
    rows = [ln for ln in out_csv.read_text().splitlines() if not ln.startswith("#")]
    assert rows[0].startswith("centre_index,S_k,S_g,x_A")
    assert len(rows) == 1 + rep.n_centres
    # Indices refer to the file's atoms (two Au atoms come first).
    first = rows[1].split(",")
    assert int(first[0]) == rep.centre_indices[0] + 2
    assert float(first[2]) == pytest.approx(rep.S_g[0], rel=1e-12)
    # A geometry file as the reference: the same file gives zero 1-D distances.
    assert main(["order", str(f), "--reference", str(f)]) == 0
    text = capsys.readouterr().out
    assert "Wasserstein S_k         0\n" in text
    # A missing file is an error with exit code 2.
    assert main(["order", str(tmp_path / "missing.xyz")]) == 1
