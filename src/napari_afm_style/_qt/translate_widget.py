"""Dock widget: style-translate a Δf stack forward (sim→exp) or backward (exp→sim)."""

from __future__ import annotations

from magicgui.widgets import ComboBox, FloatSlider

from .._layers import STACK_KEY, stack_layer_data
from ._jobs import StackJobWidget
from ._layer_choice import ROLE_KEY, add_layer_then_show, is_followed

DIRECTIONS = [("backward (exp → sim, clean a scan)", "backward"),
              ("forward (sim → exp, add experimental style)", "forward")]


class TranslateWidget(StackJobWidget):
    """Runs the translator once (off the GUI thread) and caches its residual; the
    strength slider then rescales it instantly, without re-running the network."""

    warm_kind = "translate"

    def __init__(self, napari_viewer, parent=None):
        super().__init__(napari_viewer, "Translate", parent)
        # its own output is offered but not jumped to: Translate again works on the scan
        self.image.follow = lambda layer: is_followed(layer) and layer.metadata.get(ROLE_KEY) != "translation"
        self.translation = None  # the widget's model object (translate.Translation)
        self.output_layer = None
        self.direction = ComboBox(choices=DIRECTIONS, value="backward", label="direction")
        self.strength = FloatSlider(value=1.0, min=0.0, max=1.0, step=0.01, label="strength")
        self.add_fields(self.direction, self.strength)
        self.add_device_row()
        self.strength.changed.connect(self._on_strength)
        self.start_warm_up()

    @property
    def direction_value(self) -> str:
        return self.direction.value

    @property
    def strength_value(self) -> float:
        return round(float(self.strength.value), 2)

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
        if self.translation is not None and self.output_layer in self.viewer.layers:
            self._show(None)

    def _show(self, source):
        out = self.translation.at(self.strength_value)
        if self.output_layer is not None and self.output_layer in self.viewer.layers:
            self.output_layer.data = out.data
            self.output_layer.metadata[STACK_KEY] = out
            return
        # a stable name; the strength is in the dock
        name = f"{source} · {self.translation.direction}"
        data, kwargs, _ = stack_layer_data(out, name=name)
        kwargs["contrast_limits"] = (float(out.data.min()), float(out.data.max()))
        kwargs["metadata"][ROLE_KEY] = "translation"
        # hidden first, drawn on the next pass of the event loop; output_layer is set once
        # the translation is on screen
        strength = self.strength_value
        add_layer_then_show(self.viewer, (data, kwargs, "image"),
                            on_shown=lambda layer: self._shown(layer, strength))

    def _shown(self, layer, strength):
        self.output_layer = layer
        if self.strength_value != strength:  # the slider moved while the layer was on its way
            self._on_strength(self.strength_value)
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
