"""Re-simulating a prediction on its scan (``napari_afm_style.resimulation``): ppafm runs on a
32×32-pixel, 3-height scan of one water molecule on Au(111)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import fcc111

from napari_afm_style import AFMStack
from napari_afm_style import simulate as S
from napari_afm_style.resimulation import prepare_resimulation, resimulate_prediction


@pytest.fixture(scope="module")
def scan():
    S.opencl_environment()
    slab = fcc111("Au", size=(4, 4, 1), a=4.08, vacuum=0.0)
    slab.positions[:, 2] = 0.0
    o = np.array([5.0, 4.0, 3.0])
    water = Atoms("OH2", positions=o + np.array([[0, 0, 0], [0.757, 0, 0.587], [-0.757, 0, 0.587]]))
    truth = slab + water
    truth.arrays["confidence"] = np.ones(len(truth))
    heights = o[2] + 0.587 + np.array([3.4, 3.2, 3.0])
    like = AFMStack(np.zeros((3, 32, 32)), heights, 0.2, o[:2] - 3.1, metadata={"source": "test"})
    return truth, S.simulate(truth, like)


def test_the_true_structure_reproduces_its_scan(scan):
    truth, stack = scan
    res = resimulate_prediction(stack, truth)
    assert res.placement["left_out"] == 0
    assert len(res.structure) == len(truth)  # Au and both H present: nothing added
    np.testing.assert_allclose(res.simulated.data, stack.data, rtol=1e-5, atol=1e-3)
    assert res.closest_ncc == pytest.approx(1.0, abs=1e-4)
    assert res.scores["ncc_mean"] == pytest.approx(1.0, abs=1e-4)


def test_an_unsure_atom_above_the_rest_is_left_out(scan):
    truth, stack = scan
    stray = truth + Atoms("H", positions=[[5.0, 4.6, 4.2]])  # 0.6 Å above the top H, under the tip
    stray.arrays["confidence"][-1] = 0.3
    res = resimulate_prediction(stack, stray)
    assert res.placement["left_out"] == 1 and res.placement["min_confidence"] == 0.5
    assert len(res.structure) == len(truth)
    assert res.closest_ncc == pytest.approx(1.0, abs=1e-4)
    # taken in (floor lowered), the same atom is seen: the scan no longer matches
    seen = resimulate_prediction(stack, stray, min_confidence=0.2)
    assert seen.placement["left_out"] == 0
    assert seen.closest_ncc < res.closest_ncc - 0.03


def test_structure_is_completed_with_substrate_and_hydrogens(scan):
    truth, stack = scan
    oxygen = truth[[s == "O" for s in truth.get_chemical_symbols()]]
    prep = prepare_resimulation(stack, oxygen)
    symbols = prep.structure.get_chemical_symbols()
    assert symbols.count("O") == 1 and symbols.count("H") == 2 and symbols.count("Au") > 0
    assert prep.simulated is None and np.isnan(prep.closest_ncc)


@pytest.mark.parametrize("floor, message", [(1.5, "min_confidence"), (0.95, "no atom has confidence")])
def test_refuses_what_cannot_be_simulated(scan, floor, message):
    truth, stack = scan
    unsure = truth.copy()
    unsure.arrays["confidence"] = np.full(len(unsure), 0.9)
    with pytest.raises(ValueError, match=message):
        prepare_resimulation(stack, unsure, min_confidence=floor)
    with pytest.raises(ValueError, match="no atoms"):
        prepare_resimulation(stack, Atoms())
