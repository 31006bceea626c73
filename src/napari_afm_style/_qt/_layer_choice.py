"""Layer pickers that follow the viewer's layer list."""

from __future__ import annotations

import weakref

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
        """Rebuild the list; a newly inserted matching layer becomes the choice (a stack just
        translated, atoms just predicted), else the current one stays. Listeners hear
        ``currentTextChanged`` whenever the choice changed, also when the list was empty."""
        current = self.currentText()
        added = getattr(event, "value", None) if getattr(event, "type", None) == "inserted" else None
        self.blockSignals(True)
        self.clear()
        names = [ly.name for ly in self._matching()]
        self.addItems(names)
        if added is not None and getattr(added, "name", None) in names:
            self.setCurrentText(added.name)
        elif current in names:
            self.setCurrentText(current)
        self.blockSignals(False)
        if self.currentText() != current:
            self.currentTextChanged.emit(self.currentText())

    def layer(self):
        name = self.currentText()
        if not name or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]


def is_stack_layer(layer) -> bool:
    """Image layers that carry an AFM stack (opened or produced by this plugin)."""
    return "afm_stack" in getattr(layer, "metadata", {})


def _project_atoms(viewer, event=None):
    """Make the height axis's slice thick enough to hold every atom of every Points layer
    with elements, so that atoms (a few Å under the tip) are drawn over every Δf slice.
    Image layers ignore the thickness (their projection mode is 'none')."""
    if viewer.dims.ndim < 3:
        return
    has_atoms = any(ly._type_string == "points" and "element" in getattr(ly, "features", {})
                    for ly in viewer.layers)
    if not has_atoms:
        return
    rng = viewer.dims.range[0]
    span = float(rng.stop - rng.start) + 1.0
    margins_l, margins_r = list(viewer.dims.margin_left), list(viewer.dims.margin_right)
    if margins_l[0] < span or margins_r[0] < span:
        margins_l[0] = margins_r[0] = span
        viewer.dims.margin_left = tuple(margins_l)
        viewer.dims.margin_right = tuple(margins_r)


#: viewers already connected (weakly held: our own state, not an attribute set on napari's
#: Viewer, which napari deprecates)
_PROJECTED = weakref.WeakSet()


def keep_atoms_visible(viewer) -> None:
    """Draw atoms over the scan on every height slice, now and whenever layers change."""
    if viewer not in _PROJECTED:
        viewer.layers.events.inserted.connect(lambda e: _project_atoms(viewer, e))
        _PROJECTED.add(viewer)
    _project_atoms(viewer)
