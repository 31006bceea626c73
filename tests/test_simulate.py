"""Physics and interface tests of the ppafm re-simulation (``napari_afm_style.simulate``).

Small scans (≤ 32×32 pixels, ≤ 6 heights) of tiny geometries built here with ASE; the
OpenCL environment is set up once per module (the first build of the kernels takes a few
seconds, then PoCL's disk cache serves them).
"""

import threading

import numpy as np
import pytest
from ase import Atoms
from ase.build import fcc111

from napari_afm_style import AFMStack
from napari_afm_style import simulate as S
from napari_afm_style.simulate.scan_plan import plan_scan

O_XY = (5.0, 5.0)  # on the 0.1 Å force-field lattice, so mirror planes through O are lattice planes


def water(o=(5.0, 5.0, 5.0), tilt_up=True) -> Atoms:
    """One water molecule in the xz plane, H atoms mirror-symmetric about x = O's x."""
    dz = 0.587 if tilt_up else -0.587
    pos = np.array([[0, 0, 0], [0.757, 0, dz], [-0.757, 0, dz]]) + np.asarray(o)
    return Atoms("OH2", positions=pos)


def square_like(atoms, heights, n_px=32, pixel=0.2, center=O_XY, f0=30300.0, k=1800.0, amp=1.0,
                meta=None) -> AFMStack:
    origin = np.asarray(center) - (n_px - 1) / 2 * pixel
    return AFMStack(np.zeros((len(heights), n_px, n_px)), heights, pixel, origin, f0_Hz=f0,
                    k_N_per_m=k, amplitude_A=amp, metadata=meta or {"source": "test"})


@pytest.fixture(scope="module")
def engine():
    return S.opencl_environment()


@pytest.fixture(scope="module")
def water_stack(engine):
    atoms = water()
    top = atoms.positions[:, 2].max()
    heights = top + np.array([6.0, 4.0, 3.0, 2.5, 2.0])
    like = square_like(atoms, heights)
    return atoms, like, S.simulate(atoms, like)


# -- physics -----------------------------------------------------------------------------
def test_single_water_attractive_far_repulsive_close(water_stack):
    atoms, like, out = water_stack
    c = like.shape[1] // 2  # pixels 15/16 straddle the O; average the central 2×2
    centre = out.data[:, c - 1 : c + 1, c - 1 : c + 1].mean(axis=(1, 2))
    corner = out.data[:, 0, 0]
    # far: attraction (LJ + electrostatics) gives a negative Δf, strongest over the molecule
    assert centre[0] < 0
    assert out.data[0].max() < 0.05 * abs(out.data[0].min())
    assert centre[0] < corner[0]
    # approaching, the on-top Δf first deepens, then turns back up (Pauli repulsion)
    i_min = int(np.argmin(centre))
    assert 0 < i_min < len(centre) - 1, centre
    assert centre[-1] - centre[i_min] > 0.2 * abs(centre[i_min]), centre
    # at the closest height the molecule is brighter than the background
    assert centre[-1] > corner[-1]


def test_mirror_symmetric_structure_gives_mirror_symmetric_image(water_stack):
    _, _, out = water_stack
    d = out.data
    rng = d.max() - d.min()
    # The molecule is mirror-symmetric about x = x_O (and y = y_O). Along the lines where
    # the CO tip flips from one side of an H to the other, Δf is discontinuous and a pixel
    # may land on either branch (rounding decides), so allow a few such pixels.
    for flipped in (d[:, :, ::-1], d[:, ::-1, :]):
        asym = np.abs(d - flipped)
        assert np.median(asym) <= 1e-5 * rng
        assert np.mean(asym > 1e-3 * rng) <= 0.01
    # and the image is not trivially flat
    assert np.ptp(d[-1]) > 0.1 * rng


def test_df_scales_as_f0_over_k(engine):
    atoms = water()
    heights = atoms.positions[:, 2].max() + np.array([4.0, 3.0, 2.5])
    a = S.simulate(atoms, square_like(atoms, heights, n_px=16, f0=30300.0, k=1800.0))
    b = S.simulate(atoms, square_like(atoms, heights, n_px=16, f0=2 * 30300.0, k=3 * 1800.0))
    np.testing.assert_allclose(b.data, a.data * (2 / 3), rtol=1e-4, atol=1e-5 * np.abs(a.data).max())
    assert (b.f0_Hz, b.k_N_per_m) == (2 * 30300.0, 3 * 1800.0)


def test_same_call_twice_is_identical(engine):
    slab = fcc111("Au", size=(3, 3, 1), a=4.08)
    slab.positions += (3.0, 3.0, 0.0)
    atoms = slab + water(o=(5.0, 5.0, 2.6))
    like = square_like(atoms, atoms.positions[:, 2].max() + np.array([3.5, 3.0, 2.5]), n_px=16)
    a = S.simulate(atoms, like)
    b = S.simulate(atoms, like)
    np.testing.assert_array_equal(a.data, b.data)


def test_fast_path_matches_straightforward_ppafm_call(engine):
    slab = fcc111("Au", size=(4, 4, 1), a=4.08)
    atoms = slab + water(o=(4.3, 3.1, 2.7)) + water(o=(7.2, 4.9, 3.0), tilt_up=False)
    top = atoms.positions[:, 2].max()
    like = square_like(atoms, top + np.array([3.3, 3.0, 2.7, 2.4]), n_px=24, pixel=0.25, center=(5.8, 4.0))
    fast = S.simulate(atoms, like)
    ref = S.simulate_straightforward(atoms, like)
    assert fast.metadata["engine"]["box"] == "scan"
    assert ref.metadata["engine"]["box"] == "structure"
    # the fast grid is much smaller than ppafm's whole-structure grid
    assert np.prod(fast.metadata["engine"]["force_field_grid"]) * 5 < np.prod(ref.metadata["engine"]["force_field_grid"])
    r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(fast.data, ref.data)]
    assert np.mean(r) >= 0.99
    rel = np.abs(fast.data - ref.data) / np.ptp(ref.data)
    assert np.percentile(rel, 99.5) <= 0.02


def test_probe_bent_out_of_the_grid_is_detected_and_redone(engine):
    # a very soft tip close to an H at the window's edge slides > 2 Å sideways, out of the
    # default padded grid: the engine sees it in the relaxed paths and redoes the scan
    atoms = water()
    top = atoms.positions[:, 2].max()
    like = square_like(atoms, top + np.array([2.6, 2.3, 2.0]), n_px=8, center=(6.457, 5.0))
    soft = S.TipParameters(k_xy_N_per_m=0.1)
    out = S.simulate(atoms, like, soft)
    eng = out.metadata["engine"]
    assert eng["box_attempts"] == 2 and eng["probe_inside_grid"] is True
    assert eng["grid_pads_A"][0] > 2.0
    ref = S.simulate_straightforward(atoms, like, soft)
    assert np.abs(out.data - ref.data).max() <= 0.01 * np.ptp(ref.data)


def test_flexible_tip_differs_from_rigid_at_close_range_only(water_stack):
    atoms, like, soft = water_stack
    rigid = S.simulate(atoms, like, S.TipParameters(k_xy_N_per_m=200.0))
    rng = np.ptp(soft.data)
    far = np.abs(soft.data[0] - rigid.data[0]).max() / rng
    close = np.abs(soft.data[-1] - rigid.data[-1]).max() / rng
    assert far < 0.02
    assert close > 0.05
    assert soft.metadata["tip"]["k_xy_N_per_m"] == 0.25
    assert rigid.metadata["tip"]["k_xy_N_per_m"] == 200.0


def test_tip_charge_changes_the_image(water_stack):
    atoms, like, neg = water_stack
    pos = S.simulate(atoms, like, S.TipParameters(charge_e=+0.1))
    assert np.abs(pos.data[0] - neg.data[0]).max() > 0.01 * np.ptp(neg.data[0])


# -- frames, heights and metadata -----------------------------------------------------------
def test_output_has_likes_geometry_and_records_engine(water_stack):
    _, like, out = water_stack
    assert out.shape == like.shape
    np.testing.assert_array_equal(out.heights_A, like.heights_A)
    np.testing.assert_array_equal(out.origin_A, like.origin_A)
    assert (out.pixel_size_A, out.amplitude_A, out.f0_Hz, out.k_N_per_m) == (
        like.pixel_size_A, like.amplitude_A, like.f0_Hz, like.k_N_per_m)
    assert out.data.dtype == np.float32 and np.isfinite(out.data).all()
    eng = out.metadata["engine"]
    assert eng["points_per_A"] == 10.0 and eng["scan_step_z_A"] == pytest.approx(0.1)
    assert eng["df_steps"] == 20 and eng["amplitude_effective_A"] == pytest.approx(1.0)
    assert eng["heights_interpolated"] is False and eng["probe_inside_grid"] is True
    assert out.metadata["tip"]["multipole"] == "dz2"
    assert "default point charges" in out.metadata["charges"]
    assert out.heights_are_absolute


def test_ppafm_scan_window_round_trip():
    """The convention: a ppafm window turned into a stack maps back onto the same window."""
    comment = ("Scan window: [[ 2.73957395 -6.80613344 16.95950152], [34.61457395 25.06886656 "
               "19.55950152]], Amplitude: 1.2, tip R0: [0.18, 0.13, 3], kxy: -0.0264")
    from napari_afm_style.io.xyz import parse_ppafm_comment

    atoms = water(o=(18.0, 9.0, 12.0))
    atoms.info["ppafm_scan"] = parse_ppafm_comment(comment)
    like = S.scan_from_ppafm_info(atoms)
    tip = S.tip_from_ppafm_info(atoms)
    assert like.shape == (15, 256, 256)  # (2.6 - 1.2) / 0.1 + 1 slices, 31.875 / 0.125 + 1 pixels
    assert like.amplitude_A == pytest.approx(0.6)  # ppafm's Amplitude is peak-to-peak
    assert tip.r0_A == (0.18, 0.13, 3.0)
    assert tip.k_xy_N_per_m == pytest.approx(0.0264 * 16.0217662)
    depth = np.sqrt(9 - 0.18**2 - 0.13**2)
    # farthest slice: top of the window - A - probe depth; closest: bottom + A - depth
    assert like.heights_A[0] == pytest.approx(19.55950152 - 0.6 - depth)
    assert like.heights_A[-1] == pytest.approx(16.95950152 + 0.6 - depth)
    np.testing.assert_allclose(like.origin_A, (2.73957395 + 0.18, -6.80613344 + 0.13))
    plan = plan_scan(like, tip, 0.0, 0.1)
    np.testing.assert_allclose(plan.scan_window, [[2.73957395, -6.80613344, 16.95950152],
                                                  [34.61457395, 25.06886656, 19.55950152]], atol=1e-9)
    assert plan.scan_dim == (256, 256, 26) and plan.df_steps == 12


def test_heights_off_the_grid_are_interpolated(engine):
    atoms = water()
    top = atoms.positions[:, 2].max()
    grid = square_like(atoms, top + np.array([4.0, 3.9, 3.8]), n_px=12)
    off = square_like(atoms, top + np.array([4.0, 3.93, 3.8]), n_px=12)
    a, b = S.simulate(atoms, grid), S.simulate(atoms, off)
    assert b.metadata["engine"]["heights_interpolated"] is True
    assert a.metadata["engine"]["heights_interpolated"] is False
    np.testing.assert_allclose(b.data[0], a.data[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(b.data[1], 0.3 * a.data[0] + 0.7 * a.data[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(b.heights_A, off.heights_A)


def test_finer_height_step_uses_a_finer_scan_step(engine):
    atoms = water()
    like = square_like(atoms, atoms.positions[:, 2].max() + np.array([3.1, 3.05, 3.0]), n_px=8, amp=0.5)
    out = S.simulate(atoms, like)
    assert out.metadata["engine"]["scan_step_z_A"] == pytest.approx(0.05)
    assert out.metadata["engine"]["df_steps"] == 20
    assert out.metadata["engine"]["heights_interpolated"] is False


def test_relative_heights_are_placed_above_the_top_atom(engine):
    atoms = water()
    rel = square_like(atoms, [0.4, 0.2, 0.0], n_px=8,
                      meta={"height_frame": "relative: Δz from the closest approach (Å)"})
    out = S.simulate(atoms, rel)
    top = atoms.positions[:, 2].max()
    assert out.metadata["height_offset_A"] == pytest.approx(top + 3.0)
    np.testing.assert_array_equal(out.heights_A, rel.heights_A)
    assert out.height_frame == rel.height_frame
    given = S.simulate(atoms, rel, height_offset_A=top + 3.0)
    np.testing.assert_array_equal(given.data, out.data)


def test_scan_like_template(engine):
    slab = fcc111("Au", size=(6, 6, 1), a=4.08)
    atoms = slab + water(o=(8.0, 6.0, 2.8))
    like = S.scan_like(atoms, n_heights=4, size_px=(16, 24), pixel_size_A=0.1)
    assert like.shape == (4, 16, 24)
    np.testing.assert_allclose(like.heights_A, 2.8 + 0.587 + S.DEFAULT_CLOSEST_GAP_A + 0.1 * np.arange(4)[::-1])
    # centred on the adsorbate (not on the slab)
    np.testing.assert_allclose([like.x_A.mean(), like.y_A.mean()], [8.0, 6.0])
    assert not like.data.any() and like.heights_are_absolute


def test_concurrent_calls_are_serialised_and_equal(engine):
    atoms = water()
    like = square_like(atoms, atoms.positions[:, 2].max() + np.array([3.5, 3.0]), n_px=12)
    serial = S.simulate(atoms, like).data
    results = [None, None]

    def work(i):
        results[i] = S.simulate(atoms, like).data

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, serial)


# -- bad input -------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_value_errors(engine):
    atoms = water()
    like = square_like(atoms, atoms.positions[:, 2].max() + np.array([3.5, 3.0]), n_px=8)
    with pytest.raises(ValueError, match="no atoms"):
        S.simulate(Atoms(), like)
    nan = atoms.copy()
    nan.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        S.simulate(nan, like)
    far = like.replace(origin_A=like.origin_A + 40.0)
    with pytest.raises(ValueError, match="far from the atoms"):
        S.simulate(atoms, far)
    crash = square_like(atoms, atoms.positions[:, 2].max() + np.array([1.5, 1.0]), n_px=8)
    with pytest.raises(ValueError, match="crash"):
        S.simulate(atoms, crash)
    with pytest.raises(ValueError, match="AFMStack"):
        S.simulate(atoms, np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="ase.Atoms"):
        S.simulate([1, 2, 3], like)
    with pytest.raises(ValueError, match="TipParameters"):
        S.simulate(atoms, like, tip={"k_xy_N_per_m": 0.25})
    bad_z = Atoms(numbers=[0], positions=[[5, 5, 5]])
    with pytest.raises(ValueError, match="Lennard-Jones"):
        S.simulate(bad_z, like)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="stiffness"):
        S.TipParameters(k_xy_N_per_m=-1)
    with pytest.raises(ValueError, match="multipole"):
        S.TipParameters(multipole="f")
    with pytest.raises(ValueError, match="bond length"):
        S.TipParameters(r0_A=(3.0, 0.5, 3.0))
    with pytest.raises(ValueError, match="points per"):
        S.EngineSettings(points_per_A=0)
    with pytest.raises(ValueError, match="ppafm scan parameters"):
        S.scan_from_ppafm_info(water())


# -- command line ------------------------------------------------------------------------------
def test_cli_resim_writes_a_stack(engine, tmp_path, capsys):
    from napari_afm_style.cli import main
    from napari_afm_style.io import read_stack, write_atoms, write_stack

    atoms = water()
    like = square_like(atoms, atoms.positions[:, 2].max() + np.array([3.5, 3.0]), n_px=10)
    geo = write_atoms(atoms, tmp_path / "w.xyz")
    stack = write_stack(like, tmp_path / "like.npz")
    out = tmp_path / "out.npz"
    rc = main(["resim", str(geo), "--like", str(stack), "-o", str(out), "--tip-k-xy", "0.3",
               "--tip-charge", "-0.05"])
    assert rc == 0
    res = read_stack(out)
    assert res.shape == like.shape
    np.testing.assert_array_equal(res.heights_A, like.heights_A)
    assert res.metadata["tip"]["k_xy_N_per_m"] == 0.3 and res.metadata["tip"]["charge_e"] == -0.05
    assert np.isfinite(res.data).all() and np.ptp(res.data) > 0
    assert "wrote" in capsys.readouterr().out
    # a relative stack without --height-offset is placed and says so
    rel = like.replace(heights_A=[0.5, 0.0], metadata={"height_frame": "relative: test"})
    rel_path = write_stack(rel, tmp_path / "rel.npz")
    rc = main(["resim", str(geo), "--like", str(rel_path), "-o", str(tmp_path / "rel_out.npz")])
    assert rc == 0
    assert "relative heights" in capsys.readouterr().err
    assert "3.0 Å above" in read_stack(tmp_path / "rel_out.npz").metadata["height_placement"]
    # -v/-q: the progress message is information, the relative-height note a warning
    assert main(["resim", "-q", str(geo), "--like", str(rel_path), "-o", str(tmp_path / "q.npz")]) == 0
    err = capsys.readouterr().err
    assert "relative heights" in err and "re-simulating" not in err
