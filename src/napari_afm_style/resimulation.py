"""Re-simulate a predicted structure on the scan it was predicted from, and say how well
the two agree: the check of a whole prediction (H included) that needs no labels.

The steps are those of the Re-simulate dock, the demo and ``benchmarks/bench_resim_agreement.py``:

1. atoms below a confidence floor are left out, and the tip height of a scan with relative
   heights is set from the confident atoms or the stack's own height frame
   (:func:`napari_afm_style.simulate.place_tip_over_prediction`), so that one unsure atom
   above the rest neither sets the tip height nor draws a feature the scan does not show;
2. the structure is completed for ppafm: Au(111) under the water, two H per O that has none
   (:func:`napari_afm_style.completion.complete_structure`);
3. ppafm simulates it on the scan's own grid and heights
   (:func:`napari_afm_style.simulate.simulate`);
4. NCC and SSIM per height compare scan and simulation
   (:func:`napari_afm_style.compare.match_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .compare import match_scores
from .completion import complete_structure
from .simulate import place_tip_over_prediction, simulate
from .stack import AFMStack

__all__ = ["Resimulation", "prepare_resimulation", "resimulate_prediction", "DEFAULT_MIN_CONFIDENCE"]

#: atoms of lower confidence are left out of a re-simulation by default
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass
class Resimulation:
    """A re-simulated prediction and its agreement with the scan.

    Attributes
    ----------
    structure : ase.Atoms
        What ppafm simulated: the confident atoms, completed (substrate, missing H).
    placement : dict
        :func:`~napari_afm_style.simulate.place_tip_over_prediction`'s result plus
        ``left_out`` (atoms under the floor) and ``min_confidence``.
    simulated : AFMStack or None
        The simulation on the scan's grid (None until simulated).
    scores : dict
        :func:`~napari_afm_style.compare.match_scores` (``ncc``, ``ssim`` per height, means).
    """

    structure: Atoms
    placement: dict
    simulated: AFMStack | None = None
    scores: dict | None = None

    @property
    def closest_ncc(self) -> float:
        """NCC of the slice closest to the sample (the one that shows the most detail)."""
        if not self.scores:
            return float("nan")
        return float(self.scores["ncc"][int(np.argmin(self.scores["heights_A"]))])


def prepare_resimulation(stack: AFMStack, atoms: Atoms, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                         atoms_height_frame: str | None = None) -> Resimulation:
    """Steps 1–2: the structure ppafm will simulate and where the tip goes (cheap).

    ``atoms_height_frame`` defaults to ``atoms.info["height_frame"]`` (what
    :func:`~napari_afm_style.predict.predict` records). Raises ``ValueError`` when no atom
    reaches ``min_confidence``.
    """
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
    if len(atoms) == 0:
        raise ValueError("no atoms to re-simulate")
    frame = atoms.info.get("height_frame") if atoms_height_frame is None else atoms_height_frame
    placement = place_tip_over_prediction(atoms, stack, min_confidence=min_confidence, atoms_height_frame=frame)
    kept = atoms[placement["confident"]]
    if len(kept) == 0:
        raise ValueError(f"no atom has confidence ≥ {min_confidence:.2f}; lower the floor")
    placement = dict(placement, left_out=len(atoms) - len(kept), min_confidence=float(min_confidence))
    window = ((stack.x_A[0], stack.y_A[0]), (stack.x_A[-1], stack.y_A[-1]))
    return Resimulation(complete_structure(kept, window_A=window), placement)


def resimulate_prediction(stack: AFMStack, atoms: Atoms, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                          atoms_height_frame: str | None = None, tip=None) -> Resimulation:
    """All four steps: re-simulate ``atoms`` (a prediction from ``stack``) on ``stack``.

    Parameters
    ----------
    stack : AFMStack
        The scan (Hz); the simulation uses its grid, heights and oscillation.
    atoms : ase.Atoms
        Predicted atoms in the stack's frame (Å), with ``arrays["confidence"]``.
    min_confidence : float
        Atoms below it are left out (default 0.5).
    tip : TipParameters, optional
        ppafm's CO tip (default: :class:`~napari_afm_style.simulate.TipParameters`).

    Returns
    -------
    Resimulation
        With ``closest_ncc`` the agreement of the closest slice.
    """
    res = prepare_resimulation(stack, atoms, min_confidence, atoms_height_frame)
    res.simulated = simulate(res.structure, stack, tip, height_offset_A=res.placement["height_offset_A"])
    res.scores = match_scores(stack, res.simulated)
    return res
