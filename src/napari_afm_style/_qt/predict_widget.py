"""Dock widget: predict atom positions from a Δf stack layer as a Points layer."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QSlider, QVBoxLayout, QWidget

from .._layers import atoms_layer_data, stack_from_layer
from ._jobs import JobControls
from ._layer_choice import LayerComboBox


def _is_stack_layer(layer) -> bool:
    return "afm_stack" in getattr(layer, "metadata", {})


class PredictWidget(QWidget):
    """Choose a stack layer and a model, predict off the GUI thread, then move the
    confidence threshold: the points update from the cached maps without re-running
    the network. The Points layer stays editable and saves to XYZ with elements."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        from ..predict import list_models

        self.viewer = napari_viewer
        self.maps = None  # PredictionMaps of the last run (the widget's model object)
        self.points_layer = None
        self.image = LayerComboBox(napari_viewer, "image", accept=_is_stack_layer)
        self.model = QComboBox()
        self.model.addItems(list_models())
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold_label = QLabel("0.50")
        self.jobs = JobControls("Predict atoms")
        form = QFormLayout()
        form.addRow("Δf stack", self.image)
        form.addRow("model", self.model)
        form.addRow("confidence ≥", self.threshold)
        form.addRow("", self.threshold_label)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.jobs)
        layout.addStretch(1)
        self.jobs.run_button.clicked.connect(self.run)
        self.threshold.valueChanged.connect(self._on_threshold)

    @property
    def threshold_value(self) -> float:
        return self.threshold.value() / 100.0

    def run(self):
        layer = self.image.layer()
        if layer is None:
            self.jobs.status.setText("open a Δf stack first (File ▸ Open, or a sample)")
            return None
        try:
            stack = stack_from_layer(layer)
        except ValueError as e:
            self.jobs.status.setText(str(e))
            return None
        return self.jobs.start(_predict_job, self._on_result, stack, self.model.currentText(),
                               layer.name)

    def _on_result(self, result):
        maps, source_name = result
        self.maps = maps
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
        n = len(atoms)
        counts = {s: atoms.get_chemical_symbols().count(s) for s in set(atoms.get_chemical_symbols())}
        self.jobs.status.setText(
            f"{n} atoms at confidence ≥ {self.threshold_value:.2f}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )


def _predict_job(stack, model, source_name):
    from ..predict import predict_maps

    yield (0, 2, "loading model and resampling…")
    maps = predict_maps(stack, model=model)
    yield (2, 2, "done")
    return maps, source_name
