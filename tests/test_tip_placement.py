"""Tip placement for re-simulating a predicted structure on a relative-height scan."""

import numpy as np
import pytest
from ase import Atoms

from napari_afm_style import AFMStack
from napari_afm_style.simulate import place_tip_over_prediction

RELATIVE = "relative: 0 = closest slice, positive = farther"


def _scan(frame=RELATIVE):
    return AFMStack(np.zeros((3, 16, 16)), heights_A=[0.2, 0.1, 0.0], pixel_size_A=0.5, origin_A=(0.0, 0.0),
                    metadata={"height_frame": frame})


def _prediction():
    # a layer of confident atoms around z = -3.2 and one unsure H 0.8 Å above them
    a = Atoms("OOHH", positions=[[2, 2, -3.3], [4, 2, -3.25], [3, 3, -3.05], [5, 5, -2.4]])
    a.arrays["confidence"] = np.array([0.9, 0.85, 0.7, 0.41])
    return a


def test_a_low_confidence_atom_does_not_set_the_tip_height():
    p = place_tip_over_prediction(_prediction(), _scan())
    assert p["set_by"] == [2]  # the confident H, not the unsure one above it
    assert p["height_offset_A"] == pytest.approx(-3.05 + 3.0)
    assert list(p["confident"]) == [True, True, True, False]
    assert "H #2" in p["note"] and "0.70" in p["note"]


def test_atoms_predicted_from_the_stack_stay_in_its_own_frame():
    p = place_tip_over_prediction(_prediction(), _scan(), atoms_height_frame=RELATIVE)
    assert p["height_offset_A"] == 0.0 and p["set_by"] == []
    assert "own height frame" in p["note"]
    # a confident atom dragged up to 1 Å under the closest slice: the frame would crash the
    # probe, so the confident atoms set the height instead
    a = _prediction()
    a.positions[0, 2] = -1.0
    q = place_tip_over_prediction(a, _scan(), atoms_height_frame=RELATIVE)
    assert q["set_by"] == [0] and q["height_offset_A"] == pytest.approx(2.0)


def test_absolute_heights_and_atoms_without_confidence():
    assert place_tip_over_prediction(_prediction(), _scan("absolute"))["height_offset_A"] == 0.0
    a = _prediction()
    del a.arrays["confidence"]
    p = place_tip_over_prediction(a, _scan())
    assert p["set_by"] == [3] and p["height_offset_A"] == pytest.approx(-2.4 + 3.0)
