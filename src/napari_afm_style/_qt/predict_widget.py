"""Dock widget: predict atom positions from a Δf stack layer as a Points layer."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QLabel, QSlider

from .._layers import atoms_layer_data
from ._jobs import StackJobWidget


class PredictWidget(StackJobWidget):
    """Choose a stack layer and a model, predict off the GUI thread, then move the
    confidence threshold: the points update from the cached maps without re-running
    the network. The Points layer stays editable and saves to XYZ with elements."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, "Predict atoms", parent)
        from ..predict import DEFAULT_MODEL, list_models

        self.maps = None  # PredictionMaps of the last run (the widget's model object)
        self.points_layer = None
        self.model = QComboBox()
        self.model.addItems(list_models())
        self.model.setCurrentText(DEFAULT_MODEL)  # the same default as the API, CLI and demo
        # mirrored/rotated views averaged (test-time augmentation); the model's calibrated
        # choice by default
        self.views = QComboBox()
        self.views.addItems(["model's choice", "1", "2", "4", "8"])
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold_label = QLabel("0.50")
        self.form.addRow("model", self.model)
        self.form.addRow("averaged views", self.views)
        self.form.addRow("confidence ≥", self.threshold)
        self.form.addRow("", self.threshold_label)
        self.add_device_row()
        self.threshold.valueChanged.connect(self._on_threshold)
        self.start_warm_up()

    warm_kind = "predict"

    def warm_model(self):
        return self.model.currentText()

    @property
    def threshold_value(self) -> float:
        return self.threshold.value() / 100.0

    def run(self):
        chosen = self.selected_stack()
        if chosen is None:
            return None
        layer, stack = chosen
        views = None if self.views.currentIndex() == 0 else int(self.views.currentText())
        return self.jobs.start(_predict_job, self._on_result, stack, self.model.currentText(),
                               layer.name, views, self.device_value)

    def _on_result(self, result):
        maps, source_name = result
        self.maps = maps
        # start from the model's calibrated threshold for this number of views
        self.threshold.blockSignals(True)
        self.threshold.setValue(int(round(100 * maps.default_threshold)))
        self.threshold.blockSignals(False)
        self.threshold_label.setText(f"{self.threshold_value:.2f}")
        self._show(source_name)

    def _on_threshold(self, value):
        self.threshold_label.setText(f"{value / 100:.2f}")
        if self.maps is not None and self.points_layer is not None:
            self._show(None)

    def _show(self, source_name):
        atoms = self.maps.atoms(self.threshold_value)
        data, kwargs, _ = atoms_layer_data(atoms, name=f"atoms ({self.model.currentText()})")
        layer = self.points_layer
        if layer is not None and layer in self.viewer.layers:
            layer.data = data
            layer.features = kwargs["features"]
            layer.face_color = kwargs["face_color"] if len(atoms) else "red"
            layer.size = kwargs["size"] if len(atoms) else 0.7
        else:
            kwargs.pop("name")
            self.points_layer = self.viewer.add_points(data, name=f"atoms ({self.model.currentText()})",
                                                       **kwargs)
        # a point added by hand is an O the person is sure of (napari would copy the last
        # atom's element and confidence)
        self.points_layer.feature_defaults = {"element": "O", "z_A": float("nan"), "confidence": 1.0}
        n = len(atoms)
        counts = {s: atoms.get_chemical_symbols().count(s) for s in set(atoms.get_chemical_symbols())}
        self.jobs.status.setText(
            f"{n} atoms at confidence ≥ {self.threshold_value:.2f}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )


def _predict_job(stack, model, source_name, views=None, device="cpu"):
    from ..predict import predict_maps
    from ._jobs import warm_up

    yield (0, 2, "loading the model…")
    warm_up("predict", model, device)  # instant once the dock's background load is done
    yield (1, 2, "predicting…")
    maps = predict_maps(stack, model=model, device=device, test_time_augmentation=views)
    yield (2, 2, "done")
    return maps, source_name
