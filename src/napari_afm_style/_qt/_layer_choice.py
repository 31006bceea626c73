"""Layer pickers that follow the viewer's layer list."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox


class LayerComboBox(QComboBox):
    """A combo box listing the viewer's layers of one type (optionally filtered)."""

    def __init__(self, viewer, layer_type: str, accept=None, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.layer_type = layer_type
        self.accept = accept or (lambda layer: True)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed,
                   viewer.layers.events.reordered):
            ev.connect(self.refresh)
        self.refresh()

    def _matching(self):
        return [ly for ly in self.viewer.layers
                if ly._type_string == self.layer_type and self.accept(ly)]

    def refresh(self, event=None):
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        names = [ly.name for ly in self._matching()]
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        self.blockSignals(False)

    def layer(self):
        name = self.currentText()
        if not name or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]


def is_stack_layer(layer) -> bool:
    """Image layers that carry an AFM stack (opened or produced by this plugin)."""
    return "afm_stack" in getattr(layer, "metadata", {})
