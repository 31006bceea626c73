"""Dock widget: predict atom positions from a Δf stack layer as a Points layer."""

from __future__ import annotations

from magicgui.widgets import ComboBox, FloatSlider, Label
from qtpy.QtCore import QTimer

from .._layers import ELEMENT_COLORS, ELEMENT_SIZES_A, STACK_KEY, atoms_layer_data
from ._jobs import StackJobWidget
from ._layer_choice import SOURCE_KEY, add_layer_then_show, replace_points

#: averaged views (test-time augmentation): the model's calibrated choice, or a number
VIEW_CHOICES = [("model's choice", None), ("1", 1), ("2", 2), ("4", 4), ("8", 8)]


class PredictWidget(StackJobWidget):
    """Choose a stack layer and a model, predict off the GUI thread, then move the
    confidence threshold: the points update from the cached maps without re-running
    the network. The Points layer stays editable and saves to XYZ with elements."""

    warm_kind = "predict"
    #: the points follow the threshold slider once it rests this long (a drag re-thresholds
    #: once per pause, not once per pixel of travel)
    THRESHOLD_DEBOUNCE_MS = 40

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, "Predict atoms", parent)
        from ..models.shipped import DEFAULT_MODEL, list_models  # no torch, no scipy: the dock opens at once

        self.maps = None  # PredictionMaps of the last run (the widget's model object)
        self.points_layer = None
        self._adding = None  # the Points layer added but not yet shown
        self._source_name = None  # the stack layer the atoms were predicted from
        # the same default as the API, CLI and demo
        self.model = ComboBox(choices=list_models(), value=DEFAULT_MODEL, label="model")
        # mirrored/rotated views averaged (test-time augmentation)
        self.views = ComboBox(choices=VIEW_CHOICES, value=None, label="averaged views")
        self.threshold = FloatSlider(value=0.5, min=0.01, max=0.99, step=0.01, label="confidence ≥")
        # which input the chosen model reads best (the default path: hybrid on the raw scan)
        self.advice = Label(value="", label="input")
        self.add_fields(self.model, self.advice, self.views, self.threshold)
        self.add_device_row()
        self.model.changed.connect(self._advise)
        self.image.changed.connect(self._advise)
        self._advise()
        self._threshold_timer = QTimer(self)
        self._threshold_timer.setSingleShot(True)
        self._threshold_timer.setInterval(self.THRESHOLD_DEBOUNCE_MS)
        self._threshold_timer.timeout.connect(self._apply_threshold)
        self.threshold.changed.connect(self._on_threshold)
        self.start_warm_up()

    def warm_model(self):
        return self.model.value

    @property
    def threshold_value(self) -> float:
        return round(float(self.threshold.value), 2)

    def _advise(self, *_):
        from ..models.shipped import input_advice

        layer = self.image.layer()
        stack = getattr(layer, "metadata", {}).get(STACK_KEY) if layer is not None else None
        done = (getattr(stack, "metadata", None) or {}).get("translation") or {}
        strength = float(done.get("strength", 0.0)) if done.get("direction") == "backward" else None
        self.advice.value = input_advice(self.model.value, strength)

    def run(self):
        self._advise()  # the translate dock's slider may have changed the stack since
        chosen = self.selected_stack()
        if chosen is None:
            return None
        layer, stack = chosen
        return self.jobs.start(_predict_job, self._on_result, stack, self.model.value,
                               layer.name, self.views.value, self.device_value)

    def _on_result(self, result):
        maps, source_name = result
        self.maps = maps
        # start from the model's calibrated threshold for this number of views
        with self.threshold.changed.blocked():
            self.threshold.value = round(float(maps.default_threshold), 2)
        self._show(source_name)

    @property
    def threshold_pending(self) -> bool:
        """True while a moved threshold has not yet reached the points on screen."""
        return self._threshold_timer.isActive()

    def _on_threshold(self, value):
        if self.maps is not None and (self.points_layer or self._adding) is not None:
            self._threshold_timer.start()

    def _apply_threshold(self):
        if self.maps is not None and (self.points_layer or self._adding) is not None:
            self._show(None)

    def _shown(self, layer):
        self.points_layer = layer
        self._adding = None

    def _show(self, source_name):
        atoms = self.maps.atoms(self.threshold_value)
        name = f"atoms ({self.maps.info.get('predictor_model', self.model.value)})"
        data, kwargs, _ = atoms_layer_data(atoms, name=name)
        if source_name is not None:
            self._source_name = source_name
        kwargs["metadata"][SOURCE_KEY] = self._source_name
        layer = self.points_layer or self._adding  # a layer on its way to the screen is reused
        if layer is not None and layer in self.viewer.layers:
            layer.metadata[SOURCE_KEY] = self._source_name
            replace_points(self.viewer, layer, data, features=kwargs["features"],
                           face_color=kwargs["face_color"] if len(atoms) else "red",
                           size=kwargs["size"] if len(atoms) else 0.7)
        else:
            # hidden first, drawn on the next pass of the event loop; points_layer is set
            # once the atoms are on screen
            layer = self._adding = add_layer_then_show(self.viewer, (data, kwargs, "points"), on_shown=self._shown)
            layer.current_size = ELEMENT_SIZES_A["O"]
            layer.current_face_color = ELEMENT_COLORS["O"]
        # a point added by hand is an O the person is sure of (napari would copy the last
        # atom's element and confidence; setting the features resets it, hence every time)
        layer.feature_defaults = {"element": "O", "z_A": float("nan"), "confidence": 1.0}
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
    maps.atoms(maps.default_threshold)  # finds (and caches) the peaks here, not on the GUI thread
    yield (2, 2, "done")
    return maps, source_name
