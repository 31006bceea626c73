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


def _is_atoms_layer(layer) -> bool:
    return layer._type_string == "points" and "element" in getattr(layer, "features", {})


def stack_height_range(viewer):
    """(start, stop, step) in Å of the height axis covered by the viewer's Δf stacks (the
    union of their slices), or None when no stack is open."""
    spans = []
    for ly in viewer.layers:
        if ly._type_string == "image" and is_stack_layer(ly) and ly.ndim == 3:
            ext = ly.extent
            spans.append((float(ext.world[0][0]), float(ext.world[1][0]), float(ext.step[0])))
    if not spans:
        return None
    return (min(s[0] for s in spans), max(s[1] for s in spans), min(s[2] for s in spans))


class _HeightAxis:
    """Keeps the height slider on the stacks' own slices while atoms are shown.

    napari sizes every axis to the union of the layers' extents, so atoms a few Å under the
    tip would stretch the slider over heights without Δf (83 steps for a 10-slice stack,
    the scan blank on most of them). After each range update the height axis is set back
    to the stacks' heights, and the slice is made thick enough (margins) that every atom
    is drawn over every slice. Image layers ignore the thickness (projection mode 'none').
    """

    def __init__(self, viewer):
        self.viewer = weakref.ref(viewer)
        self._busy = False
        viewer.dims.events.range.connect(self.update)
        viewer.layers.events.inserted.connect(self.update)
        viewer.layers.events.removed.connect(self.update)

    def update(self, event=None):
        viewer = self.viewer()
        if viewer is None or self._busy or viewer.dims.ndim < 3:
            return
        if not any(_is_atoms_layer(ly) for ly in viewer.layers):
            return
        self._busy = True
        try:
            dims = viewer.dims
            full = viewer.layers._ranges[0]  # every layer, atoms included
            heights = stack_height_range(viewer)
            if heights is not None:
                start, stop, step = heights
                r = dims.range[0]
                if (abs(r.start - start) > 1e-9 or abs(r.stop - stop) > 1e-9
                        or abs(r.step - step) > 1e-9):
                    ranges = list(dims.range)
                    ranges[0] = type(r)(start, stop, step)
                    dims.range = tuple(ranges)
            # thick enough that a slice at either end of the slider holds every atom
            span = float(max(full.stop, dims.range[0].stop) - min(full.start, dims.range[0].start)) + 1.0
            left, right = list(dims.margin_left), list(dims.margin_right)
            if left[0] < span or right[0] < span:
                left[0] = right[0] = span
                dims.margin_left = tuple(left)
                dims.margin_right = tuple(right)
        finally:
            self._busy = False


#: one controller per viewer, weakly held: our own state, not an attribute set on napari's
#: Viewer (which napari deprecates)
_HEIGHT_AXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def keep_atoms_visible(viewer) -> None:
    """Keep the height slider on the stacks' slices and draw atoms over every slice, now
    and whenever layers change."""
    axis = _HEIGHT_AXES.get(viewer)
    if axis is None:
        axis = _HEIGHT_AXES[viewer] = _HeightAxis(viewer)
    axis.update()
