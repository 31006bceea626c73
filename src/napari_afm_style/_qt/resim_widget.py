"""Dock widget: re-simulate a (predicted or hand-edited) structure beside the scan."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import CheckBox, Container, FloatSpinBox
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from .._layers import STACK_KEY, atoms_from_points, stack_from_layer, stack_layer_data
from ._jobs import JobControls
from ._layer_choice import (REVEAL_AFTER_MS, ROLE_KEY, SOURCE_KEY, LayerPicker, add_layer_then_show,
                            is_stack_layer, keep_atoms_visible)


class ResimWidget(QWidget):
    """Completes the structure (substrate, missing H), simulates it with ppafm on the
    SAME scan as the source stack off the GUI thread, and shows it to the right of the
    scan with per-height NCC/SSIM; editing a point and pressing the button again is the
    intended loop.

    Atoms below a confidence floor (default 0.5) are left out, and the tip height of a
    relative-height scan comes from the confident atoms or the stack's own height frame
    (:func:`napari_afm_style.simulate.place_tip_over_prediction`): one unsure atom above
    the rest neither sets the tip height nor draws a bright disc that the scan does not
    show. The result says which atoms set the height and how many were left out."""

    GAP_A = 2.0

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.result = None  # (simulated AFMStack, scores), set once its layers are on screen
        self._result = None
        self.sim_layer = None
        self.diff_layer = None
        self.image = LayerPicker(napari_viewer, "image", accept=is_stack_layer, label="scan")
        self.points = LayerPicker(napari_viewer, "points", label="structure")
        self.min_confidence = FloatSpinBox(
            value=0.5, min=0.0, max=1.0, step=0.05, label="confidence ≥",
            tooltip="atoms of lower confidence are left out of the simulation and of the tip "
                    "placement (0: simulate every atom)")
        self.placement = None  # how the tip height was chosen (dict) for the last result
        self.show_difference = CheckBox(value=False, text="difference layer (standardised)")
        self.form = Container(widgets=[self.image, self.points, self.min_confidence, self.show_difference],
                              labels=True)
        self.form.margins = (0, 0, 0, 0)
        self.scores = QLabel("")
        self.scores.setWordWrap(True)
        self.jobs = JobControls("Re-simulate")
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.jobs)
        layout.addWidget(self.scores)
        layout.addStretch(1)
        self.jobs.run_button.clicked.connect(self.run)
        self.points.changed.connect(self._follow_source)
        self._follow_source()
        keep_atoms_visible(napari_viewer)

    def _follow_source(self, *_):
        """A predicted structure is re-simulated on the scan it was predicted from: choosing
        its Points layer chooses that stack (when it is still open)."""
        points = self.points.layer()
        source = getattr(points, "metadata", {}).get(SOURCE_KEY) if points is not None else None
        if source is None:
            return
        for layer in self.viewer.layers:
            if layer.name == source and any(c is layer for c in self.image.choices):
                self.image.value = layer
                return

    def run(self):
        image, points = self.image.layer(), self.points.layer()
        if image is None or points is None:
            self.jobs.status.setText("choose a Δf stack and a Points layer (predicted or loaded .xyz)")
            return None
        try:
            stack = stack_from_layer(image)
            atoms = atoms_from_points(points.data, points.features)
        except ValueError as e:
            self.jobs.status.setText(str(e))
            return None
        frame = points.metadata.get("atoms_info", {}).get("height_frame")
        return self.jobs.start(_resim_job, self._on_result, stack, atoms, image.name,
                               float(self.min_confidence.value), frame)

    def _on_result(self, result):
        simulated, scores, diff, source, placement = result
        self.placement = placement
        shift = simulated.extent_A[0] + self.GAP_A
        data, kwargs, _ = stack_layer_data(simulated, name=f"re-simulated {source}")
        t = list(kwargs["translate"])
        t[2] += shift  # beside the scan, same heights: the z slider moves both
        kwargs["translate"] = tuple(t)
        kwargs["metadata"][ROLE_KEY] = "re-simulation"  # offered, but pickers do not jump to it
        new_layers = []  # (attribute, LayerData) of layers still to add
        if self.sim_layer is not None and self.sim_layer in self.viewer.layers:
            self.sim_layer.data = data
            self.sim_layer.metadata[STACK_KEY] = simulated
        else:
            new_layers.append(("sim_layer", (data, kwargs, "image")))
        if self.show_difference.value:
            d, dk, _ = stack_layer_data(diff, name=f"scan − sim {source}", colormap="PiYG",
                                        contrast_limits=(-3.0, 3.0))
            t = list(dk["translate"])
            t[2] += 2 * shift
            dk["translate"] = tuple(t)
            dk["metadata"][ROLE_KEY] = "difference"  # not Hz: never offered as a Δf stack
            if self.diff_layer is not None and self.diff_layer in self.viewer.layers:
                self.diff_layer.data = d
            else:
                new_layers.append(("diff_layer", (d, dk, "image")))
        closest = int(np.argmin(scores["heights_A"]))
        lines = [f"closest slice NCC {scores['ncc'][closest]:.3f}; mean NCC {scores['ncc_mean']:.3f}, "
                 f"mean SSIM {scores['ssim_mean']:.3f}",
                 f"tip height: {placement['note']}"]
        if placement["left_out"]:
            lines.append(f"left out {placement['left_out']} atom(s) of confidence < "
                         f"{placement['min_confidence']:.2f}")
        lines += [f"z = {z:.2f} Å: NCC {c:.3f}, SSIM {s:.3f}"
                  for z, c, s in zip(scores["heights_A"], scores["ncc"], scores["ssim"])]
        self.scores.setText("\n".join(lines))
        self._result = (simulated, scores)
        self._add_in_turn(new_layers)

    def _add_in_turn(self, new_layers):
        """Add the new layers one per pass of the event loop, each hidden first and drawn
        on the next pass (two image layers at once held the window for their controls,
        nodes and shaders together); ``result`` is set once all of them are on screen."""
        if not new_layers:
            self.result = self._result
            return
        from qtpy.QtCore import QTimer

        attribute, layer_data = new_layers[0]

        def shown(layer):
            QTimer.singleShot(REVEAL_AFTER_MS, lambda: self._add_in_turn(new_layers[1:]))

        setattr(self, attribute, add_layer_then_show(self.viewer, layer_data, on_shown=shown))


def _resim_job(stack, atoms, source, min_confidence=0.5, atoms_height_frame=None):
    from ..compare import difference_stack, match_scores
    from ..resimulation import prepare_resimulation
    from ..simulate import simulate

    yield (0, 3, "placing the tip and completing the structure (substrate, hydrogens)…")
    res = prepare_resimulation(stack, atoms, min_confidence, atoms_height_frame)
    yield (1, 3, f"simulating {len(res.structure)} atoms with ppafm…")
    simulated = simulate(res.structure, stack, height_offset_A=res.placement["height_offset_A"])
    yield (2, 3, "scoring")
    scores = match_scores(stack, simulated)
    yield (3, 3, f"done: mean NCC {scores['ncc_mean']:.3f}")
    return simulated, scores, difference_stack(stack, simulated), source, res.placement
