"""Layer pickers that follow the viewer's layer list."""

from __future__ import annotations

import contextlib
import weakref

from magicgui.widgets import ComboBox
from .._layers import STACK_KEY


class LayerPicker(ComboBox):
    """A magicgui combo box of the viewer's layers of one type (optionally filtered).

    Its value is the layer itself (not its name), so a renamed layer stays chosen. The
    choices follow the layer list (inserted, removed, reordered, renamed); a newly inserted
    matching layer becomes the choice (a stack just translated, atoms just predicted);
    ``changed`` fires whenever the chosen layer changes, also from or to none.
    """

    def __init__(self, viewer, layer_type: str, accept=None, label: str | None = None, follow=None,
                 **kwargs):
        self._viewer_ref = weakref.ref(viewer)
        self.layer_type = layer_type
        self.accept = accept or (lambda layer: True)
        self.follow = follow or is_followed  # which new layers become the choice
        super().__init__(choices=self._choices, nullable=True, label=label, **kwargs)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._refresh)
        viewer.layers.events.reordered.connect(self._refresh)
        for layer in viewer.layers:
            layer.events.name.connect(self._refresh)
        self._refresh()

    @property
    def viewer(self):
        return self._viewer_ref()

    def _choices(self, widget=None):
        viewer = self.viewer
        if viewer is None:
            return []
        return [(ly.name, ly) for ly in viewer.layers
                if ly._type_string == self.layer_type and self.accept(ly)]

    def _refresh(self, event=None):
        before = self.value
        with self.changed.blocked():
            self.reset_choices()
            layers = [c for c in self.choices if c is not None]
            if any(c is before for c in layers):
                self.value = before  # still there (renamed, or another layer moved)
            elif layers:
                self.value = layers[0]
        if self.value is not before:
            self.changed.emit(self.value)

    def _on_inserted(self, event):
        added = event.value
        added.events.name.connect(self._refresh)
        before = self.value
        with self.changed.blocked():
            self.reset_choices()
            if self.follow(added) and any(c is added for c in self.choices):
                self.value = added
        if self.value is not before:
            self.changed.emit(self.value)

    def layer(self):
        """The chosen layer, or None (no matching layer)."""
        layer, viewer = self.value, self.viewer
        if layer is None or viewer is None or layer not in viewer.layers:
            return None
        return layer

    def choose(self, name: str) -> None:
        """Choose the layer called ``name`` (as a person picks it from the list)."""
        self.value = self.viewer.layers[name]

    @property
    def current_name(self) -> str:
        layer = self.layer()
        return "" if layer is None else layer.name


#: Points layer metadata key: the name of the Δf stack layer its atoms were predicted from
#: (the Re-simulate dock simulates on that scan when the layer is chosen)
SOURCE_KEY = "afm_source_layer"

#: layer metadata key for what a layer made by a dock is: "re-simulation" (a Δf stack the
#: pickers offer but do not jump to when it appears) or "difference" (not Hz: not a stack)
ROLE_KEY = "afm_role"


def is_stack_layer(layer) -> bool:
    """Image layers that carry an AFM stack in Hz (opened or produced by this plugin)."""
    metadata = getattr(layer, "metadata", {})
    return STACK_KEY in metadata and metadata.get(ROLE_KEY) != "difference"


def is_followed(layer) -> bool:
    """Whether a new layer becomes the pickers' choice: not a re-simulation (the next
    re-simulation must run against the scan again, and Predict stays on it)."""
    return getattr(layer, "metadata", {}).get(ROLE_KEY) != "re-simulation"


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
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)
        for layer in viewer.layers:
            self._range_on_final_announcement(layer)

    def _on_inserted(self, event):
        self._range_on_final_announcement(event.value)
        self.update()

    def _on_removed(self, event):
        on_final = _FINAL_ONLY.pop(event.value, None)
        if on_final is not None:
            event.value.events.data.disconnect(on_final)
        self.update()

    def _range_on_final_announcement(self, layer):
        """Let the viewer re-range and re-slice on an atoms layer's data change once, not twice.

        napari's ``Points.data`` setter (and a point dragged by hand) announces a change
        before and after it happens, and the viewer recomputes every axis' range and
        re-slices every layer on both (each pass 20–40 ms with a stack open). The extents
        only change on the second; the first is dropped for our atoms layers.
        """
        viewer = self.viewer()
        on_change = getattr(viewer, "_on_layers_change", None)  # napari's range/slice update
        if not callable(on_change) or not _is_atoms_layer(layer) or layer in _FINAL_ONLY:
            return

        def on_final(event):
            action = str(getattr(event, "action", "")).lower()
            if not action.endswith(("changing", "adding", "removing")):
                self.rerange_once()

        layer.events.data.disconnect(on_change)
        layer.events.data.connect(on_final)
        _FINAL_ONLY[layer] = on_final

    def rerange_once(self) -> None:
        """napari's range update for changed layer data, with the height axis set back to the
        stacks' slices, re-slicing the layers at most once.

        Done plainly, napari widens the height axis to the atoms and re-slices every layer,
        then :meth:`update` narrows it again and every layer is re-sliced a second time,
        although the slider ends where it was (or, worse, one slice off). Here the slider
        keeps its slice, and the re-slicing waits until both are done and happens only if
        the position or the slice thickness really changed.
        """
        viewer = self.viewer()
        if viewer is None:
            return
        with reslice_at_most_once(viewer):  # also when axes appear or vanish: it then re-slices
            viewer._on_layers_change()

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


@contextlib.contextmanager
def reslice_at_most_once(viewer):
    """Hold back napari's re-slicing of every layer while the body changes the viewer's
    axes, keep the height slider on the stacks' slices (and on its slice), and re-slice
    once at the end if the position or the slice thickness changed.

    napari re-slices all layers on every change of the dims' position, step or margins; a
    range update that widens the height axis to the atoms, followed by the height axis set
    back to the stacks' slices, would re-slice twice although the slider ends where it was.
    """
    dims = viewer.dims
    reslice = getattr(viewer, "_update_layers", None)
    axis = _HEIGHT_AXES.get(viewer)
    if not callable(reslice):
        yield
        if axis is not None:
            axis.update()
        return
    names = ("point", "current_step", "margin_left", "margin_right")
    before = [getattr(dims, n) for n in names]
    ndim, height_range, height = dims.ndim, dims.range[0], dims.point[0]
    with contextlib.ExitStack() as held:
        for n in names:
            held.enter_context(getattr(dims.events, n).blocker(reslice))
        yield
        if axis is not None:
            axis.update()
        if dims.ndim == ndim and dims.range[0] == height_range and dims.point[0] != height:
            # widened and narrowed back, the axis would leave the slider a slice off
            dims.set_point(0, height)
    if dims.ndim != ndim or [getattr(dims, n) for n in names] != before:
        reslice()


#: atoms layers whose data event reaches the viewer's range update only when final, with
#: the callback that does it
_FINAL_ONLY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: one controller per viewer, weakly held: our own state, not an attribute set on napari's
#: Viewer (which napari deprecates)
_HEIGHT_AXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keep_atoms_visible(viewer) -> None:
    """Keep the height slider on the stacks' slices and draw atoms over every slice, now
    and whenever layers change."""
    axis = _HEIGHT_AXES.get(viewer)
    if axis is None:
        axis = _HEIGHT_AXES[viewer] = _HeightAxis(viewer)
    axis.update()


def replace_points(viewer, layer, data, **properties) -> None:
    """Give a Points layer new points and per-point properties (features, face_color, size…)
    as one update of the viewer.

    napari's ``Points.data`` setter announces the change twice (before and after); each
    announcement makes the viewer recompute the axes' ranges and re-slice every layer,
    and the height axis kept on the stacks' slices (:func:`keep_atoms_visible`) doubles
    that: four passes over all layers for one new set of points. Here the viewer's range
    update is held back while the layer changes and run once afterwards (re-slicing at
    most once, :meth:`_HeightAxis.rerange_once`); everything else that listens to the
    layer (its drawing, the order plot) hears every event as before.
    """
    update_viewer = getattr(viewer, "_on_layers_change", None)  # napari's range/slice update
    held = contextlib.ExitStack()
    if callable(update_viewer):
        held.enter_context(layer.events.data.blocker(update_viewer))
        if layer in _FINAL_ONLY:
            held.enter_context(layer.events.data.blocker(_FINAL_ONLY[layer]))
    with held:
        layer.data = data
        for name, value in properties.items():
            setattr(layer, name, value)
    axis = _HEIGHT_AXES.get(viewer)
    if axis is not None:
        axis.rerange_once()
    elif callable(update_viewer):
        update_viewer()


#: pause (ms) between adding a dock's new layer and drawing it: the event loop repaints and
#: takes input in between
REVEAL_AFTER_MS = 1


def add_layer_then_show(viewer, layer_data, on_shown=None):
    """Add a LayerData tuple ``(data, kwargs, layer_type)`` as a layer, hidden, and make it
    visible on a later pass of the event loop; returns the layer.

    Adding a layer to napari builds its controls, its vispy node and re-slices the viewer
    (60–100 ms on the GUI thread); its first drawing compiles the node's shaders (another
    10–90 ms in software OpenGL). Done in one go the window stalls for both; hidden first,
    the layer is neither sliced nor drawn until it is shown, so the window repaints and
    answers input between the parts: insertion, then napari's switch of the selection to the
    new layer (its controls and the layer list, 20 ms), then showing it. ``on_shown(layer)``
    runs then (also when the layer was removed meanwhile: it is then left as it is)."""
    from qtpy.QtCore import QTimer

    data, kwargs, layer_type = layer_data
    kwargs = dict(kwargs)
    visible = kwargs.pop("visible", True)
    layers = viewer.layers
    select_on_insert = getattr(layers, "_activate_on_insert", None)
    try:
        if select_on_insert is not None:  # napari's selection switch (controls, list) comes later
            layers._activate_on_insert = False
        with reslice_at_most_once(viewer):  # the new layer is hidden: only the others need it
            layer = getattr(viewer, f"add_{layer_type}")(data, visible=False, **kwargs)
    finally:
        if select_on_insert is not None:
            layers._activate_on_insert = select_on_insert

    def select():
        if select_on_insert and layer in layers:
            layers.selection.active = layer  # as napari does on insert, one pass later
        QTimer.singleShot(REVEAL_AFTER_MS, show)

    def show():
        if layer in layers:
            layer.visible = visible
        if on_shown is not None:
            on_shown(layer)

    QTimer.singleShot(REVEAL_AFTER_MS, select)
    return layer
