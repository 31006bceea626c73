"""The acceptance rules for labelled experiment-style scans, and scoring a real model."""

from importlib import resources

import numpy as np
import pytest

from napari_afm_style.labelled_scans import (dedupe_stacked, read_labelled_scan, read_labelled_scans,
                                             score_labelled_scans, top_layer_f1)

TOP = np.array([[2.0, 2.0, -3.0], [5.0, 2.0, -3.2], [8.0, 2.0, -3.5]])
LOWER = np.array([[2.0, 6.0, -5.5]])  # 2.5 Å under the top layer: not in recall


def test_exact_top_layer_scores_one_and_lower_layer_is_forgiven():
    truth = np.vstack([TOP, LOWER])
    assert top_layer_f1(TOP, truth)["f1"] == 1.0
    r = top_layer_f1(np.vstack([TOP, LOWER]), truth)  # a predicted lower-layer O is not wrong
    assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["n_top"] == 3
    assert top_layer_f1(LOWER, truth)["recall"] == 0.0


def test_lateral_tolerance_and_false_positives():
    truth = np.vstack([TOP, LOWER])
    off = TOP + [0.45, 0.0, 0.0]
    assert top_layer_f1(off, truth)["f1"] == 1.0
    assert top_layer_f1(TOP + [0.55, 0.0, 0.0], truth)["f1"] == 0.0
    r = top_layer_f1(np.vstack([TOP, [[12.0, 12.0, -3.0]]]), truth)  # one invented O
    assert r["precision"] == pytest.approx(3 / 4) and r["recall"] == 1.0
    assert r["f1"] == pytest.approx(2 * 0.75 / 1.75)
    assert top_layer_f1(np.zeros((0, 3)), truth)["f1"] == 0.0


def test_stacked_columns_count_once():
    # an O 0.3 Å beside and 1 Å under a predicted one is the same column: counted once
    pred = np.vstack([TOP, TOP[:1] + [0.3, 0.0, -1.0]])
    assert len(dedupe_stacked(pred)) == 3
    assert top_layer_f1(pred, TOP)["precision"] == 1.0


def _write_labelled(path, stack, atoms, frame_shift):
    np.savez(path, df=stack.data, heights_A=stack.heights_A - frame_shift, pixel_size_A=stack.pixel_size_A,
             scan_origin_A=stack.origin_A, f0_Hz=stack.f0_Hz, k_N_per_m=stack.k_N_per_m,
             amplitude_A=stack.amplitude_A, atoms_Z=atoms.numbers,
             atoms_xyz=atoms.positions - [0.0, 0.0, frame_shift])


@pytest.fixture(scope="module")
def labelled_sample(tmp_path_factory):
    """The bundled simulated sample written as a labelled scan in a RELATIVE height frame
    (0 = closest slice), as experiment-style scans come."""
    from napari_afm_style.io import read_atoms, read_stack

    data = resources.files("napari_afm_style.data")
    stack = read_stack(str(data / "sample_water_sim.npz"))
    atoms = read_atoms(str(data / "sample_water_sim.xyz"))
    folder = tmp_path_factory.mktemp("labelled")
    _write_labelled(folder / "scan_0000.npz", stack, atoms, float(stack.heights_A[-1]))
    return folder


def test_reader_keeps_window_oxygen_in_the_relative_frame(labelled_sample, tmp_path):
    scan = read_labelled_scan(labelled_sample / "scan_0000.npz")
    assert scan.stack.heights_A[-1] == pytest.approx(0.0)
    assert len(scan.oxygen_A) > 10 and scan.oxygen_A[:, 2].max() < -2.0  # below the closest tip
    x0, y0 = scan.stack.origin_A
    assert np.all((scan.oxygen_A[:, 0] >= x0) & (scan.oxygen_A[:, 0] < x0 + 16.0))
    np.savez(tmp_path / "bad.npz", df=np.zeros((10, 8, 8)))
    with pytest.raises(ValueError, match="bad.npz.*atoms_Z"):
        read_labelled_scan(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        read_labelled_scans(tmp_path / "nothing_here")


def test_shipped_model_scores_the_sample_and_a_shifted_prediction_does_not(labelled_sample):
    good = score_labelled_scans("pure", labelled_sample, bootstrap=50)
    assert good["mean_f1"] >= 0.8 and good["files"] == ["scan_0000.npz"]

    def shifted(stack):  # content moved 1 Å: every prediction lands off its atom
        return stack.replace(origin_A=stack.origin_A + 1.0)
    bad = score_labelled_scans("pure", labelled_sample, transform=shifted, bootstrap=50)
    assert bad["mean_f1"] < 0.3


def test_rigid_offset_is_the_shift_that_costs_the_matches():
    from napari_afm_style.labelled_scans import rigid_offset_A, top_layer_f1

    rng = np.random.default_rng(3)
    grid = np.array([[x, y, -3.0] for x in np.arange(0, 12, 2.8) for y in np.arange(0, 12, 2.8)])
    shifted = grid + [0.1, -0.6, 0.0] + np.c_[rng.normal(0, 0.05, (len(grid), 2)), np.zeros(len(grid))]
    assert top_layer_f1(shifted, grid)["f1"] < 0.5  # 0.6 Å off: beyond the 0.5 Å tolerance
    offset = rigid_offset_A(shifted, grid)
    np.testing.assert_allclose(offset, [0.1, -0.6], atol=0.03)
    moved = shifted.copy()
    moved[:, :2] -= offset
    assert top_layer_f1(moved, grid)["f1"] == 1.0
    assert rigid_offset_A(np.zeros((0, 3)), grid) is None
    assert rigid_offset_A(grid + [5.0, 5.0, 0.0], grid[:1]) is None  # nothing within 0.9 Å
