"""Dock widget: style-translate a Δf stack forward (sim→exp) or backward (exp→sim)."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QLabel, QSlider

from .._layers import stack_layer_data
from ._jobs import StackJobWidget


class TranslateWidget(StackJobWidget):
    """Runs the translator once (off the GUI thread) and caches its residual; the
    strength slider then rescales it instantly, without re-running the network."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, "Translate", parent)
        self.translation = None  # the widget's model object (translate.Translation)
        self.output_layer = None
        self.direction = QComboBox()
        self.direction.addItems(["backward (exp → sim, clean a scan)",
                                 "forward (sim → exp, add experimental style)"])
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(100)
        self.strength_label = QLabel("1.00")
        self.form.addRow("direction", self.direction)
        self.form.addRow("strength", self.strength)
        self.form.addRow("", self.strength_label)
        self.add_device_row()
        self.strength.valueChanged.connect(self._on_strength)
        self.start_warm_up()

    warm_kind = "translate"

    @property
    def direction_value(self) -> str:
        return self.direction.currentText().split()[0]

    @property
    def strength_value(self) -> float:
        return self.strength.value() / 100.0

    def run(self):
        chosen = self.selected_stack()
        if chosen is None:
            return None
        layer, stack = chosen
        return self.jobs.start(_translate_job, self._on_result, stack, self.direction_value,
                               layer.name, self.device_value)

    def _on_result(self, result):
        self.translation, source = result
        self.output_layer = None
        self._show(source)

    def _on_strength(self, value):
        self.strength_label.setText(f"{value / 100:.2f}")
        if self.translation is not None and self.output_layer in self.viewer.layers:
            self._show(None)

    def _show(self, source):
        out = self.translation.at(self.strength_value)
        if self.output_layer is not None and self.output_layer in self.viewer.layers:
            self.output_layer.data = out.data
            self.output_layer.metadata["afm_stack"] = out
            return
        # a stable name (the pickers find layers by name); the strength is in the dock
        name = f"{source} · {self.translation.direction}"
        data, kwargs, _ = stack_layer_data(out, name=name)
        kwargs["contrast_limits"] = (float(out.data.min()), float(out.data.max()))
        self.output_layer = self.viewer.add_image(data, **kwargs)
        self.jobs.status.setText(f"{self.translation.direction} translation ready; "
                                 "move the strength slider to blend")


def _translate_job(stack, direction, source, device="cpu"):
    from ..translate import prepare_translation
    from ._jobs import warm_up

    yield (0, 2, "loading the translator…")
    warm_up("translate", None, device)  # instant once the dock's background load is done
    yield (1, 2, f"translating {direction}…")
    translation = prepare_translation(stack, direction, device=device)
    yield (2, 2, "done")
    return translation, source
