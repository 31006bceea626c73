"""Histogram dock: tetrahedral order S_k / S_g of a Points layer against theory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtCore import QTimer
from magicgui.widgets import Container
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .._layers import atoms_from_points
from ._background import background
from ._layer_choice import LayerPicker, keep_atoms_visible
from .mpl_canvas import ThemedCanvas


class OrderHistogramCanvas(ThemedCanvas):
    """S_k and S_g histograms of the prediction over the theoretical reference.

    One legend above both panels (it never covers a peak); each panel's title gives the
    Wasserstein distance W between the prediction's and theory's distribution of that
    parameter (0 = identical; same units as the parameter)."""

    def __init__(self, viewer, parent=None):
        super().__init__(viewer, parent)
        self.hist = None
        self.distances = None
        self.title = ""

    def state(self) -> dict:
        return dict(super().state(), hist=self.hist, distances=self.distances, title=self.title)

    def draw_on(self, figure, state):
        # one artist per histogram (stairs), not one per bar
        colors = state["colors"]
        fg = colors["foreground"]
        axes = figure.subplots(1, 2)
        handles = None
        for ax, key, label in zip(axes, ("S_k", "S_g"), ("$S_k$ (translational)", "$S_g$ (orientational)")):
            if state["hist"] is not None:
                h = state["hist"][key]
                if h["reference"] is not None:
                    ax.stairs(h["reference"], h["edges"], fill=True, color="#888888", alpha=0.6,
                              label="theory (reference)")
                ax.stairs(h["prediction"], h["edges"], color="#e8553e", lw=1.6, label="this structure")
                w = (state["distances"] or {}).get(f"wasserstein_{key}", float("nan"))
                ax.set_title(f"W = {w:.3g}", fontsize=9)
                handles = ax.get_legend_handles_labels()
            ax.set_xlabel(label)
            ax.set_ylabel("probability density")
            self.style_axes(ax, colors)
        if handles is not None:
            legend = figure.legend(*handles, loc="outside upper center", ncols=2, fontsize=8,
                                   title=(f"{state['title']}: " if state["title"] else "")
                                   + "W = Wasserstein distance to theory", title_fontsize=8)
            self.style_legend(legend, colors)
        else:
            axes[0].text(0.5, 0.5, "no O centres with 4 neighbours", transform=axes[0].transAxes,
                         ha="center", color=fg, fontsize=8)

    def drawn_bars(self) -> int:
        """Number of histogram bins of the structure drawn on screen with a non-zero height."""
        from matplotlib.patches import StepPatch

        if self.figure is None:
            return 0
        return sum(int(np.count_nonzero(p.get_data().values > 0)) for ax in self.figure.axes
                   for p in ax.patches if isinstance(p, StepPatch) and not p.get_fill())


def _order_job(oxygen, name):
    """S_k/S_g, their distances to theory and histograms (off the GUI thread)."""
    from ..order import histogram_data, order_distances, tetrahedral_order

    idx, sk, sg = tetrahedral_order(oxygen)
    dist = order_distances(oxygen) if len(idx) else {}
    hist = histogram_data(sk, sg) if len(idx) else None
    return name, oxygen, idx, sk, sg, dist, hist


class OrderWidget(QWidget):
    """Recomputes whenever the chosen Points layer changes (predicted, edited by hand).

    Edits are debounced (``DEBOUNCE_MS``) and the statistics (EMD/MMD against theory) are
    computed off the GUI thread; a result that an edit made stale is dropped."""

    DEBOUNCE_MS = 150

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.report = None  # (centre_indices, S_k, S_g, positions, distances)
        self.plotted = None  # name of the layer the plot shows
        self._watched = None
        self._generation = 0
        self._done_generation = 0
        self._worker = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(self.DEBOUNCE_MS)
        self._timer.timeout.connect(self._compute)
        self.points = LayerPicker(napari_viewer, "points", label="structure")
        self.canvas = OrderHistogramCanvas(napari_viewer)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.save_figure = QPushButton("Save figure…")
        self.save_csv = QPushButton("Save numbers (CSV)…")
        self.form = Container(widgets=[self.points], labels=True)
        self.form.margins = (0, 0, 0, 0)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_figure)
        buttons.addWidget(self.save_csv)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.points.changed.connect(self._watch)
        self.save_figure.clicked.connect(lambda: self._ask_save("figure"))
        self.save_csv.clicked.connect(lambda: self._ask_save("csv"))
        self._watch()
        keep_atoms_visible(napari_viewer)

    @property
    def pending(self) -> bool:
        """True while an edit has not yet reached the plot on screen."""
        return self._done_generation != self._generation or self.canvas.pending

    def _watch(self, *_):
        if self._watched is not None:
            try:
                self._watched.events.data.disconnect(self.update_plot)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._watched = self.points.layer()
        if self._watched is not None:
            self._watched.events.data.connect(self.update_plot)
        self.update_plot()

    def update_plot(self, event=None):
        """Schedule a recomputation (debounced: a drag of many edits computes once)."""
        self._generation += 1
        self._timer.start()

    def _compute(self):
        generation = self._generation
        layer = self.points.layer()
        if layer is None:
            self.summary.setText("choose a Points layer with O atoms")
            self._done_generation = generation
            return
        try:
            atoms = atoms_from_points(layer.data, layer.features)
        except ValueError as e:
            self.summary.setText(str(e))
            self._done_generation = generation
            return
        oxygen = atoms.positions[np.array(atoms.get_chemical_symbols()) == "O"]
        self.summary.setText(f"computing the order of {len(oxygen)} O in {layer.name!r}…")
        worker = background(_order_job, oxygen, layer.name)
        worker.returned.connect(lambda result, g=generation: self._show(result, g))
        worker.errored.connect(lambda exc, g=generation: self._failed(exc, g))
        self._worker = worker
        worker.start()

    def _failed(self, exc, generation):
        if generation == self._generation:
            self.summary.setText(f"error: {exc}")
            self._done_generation = generation

    def _show(self, result, generation):
        if generation != self._generation:
            return  # an edit came in meanwhile: its own computation is on its way
        name, oxygen, idx, sk, sg, dist, hist = result
        self.report = (idx, sk, sg, oxygen, dist)
        self.canvas.hist = hist
        self.canvas.distances = dist
        self.canvas.title = name
        self.canvas.refresh()
        self.plotted = name
        if len(idx):
            self.summary.setText(
                f"{len(oxygen)} O, {len(idx)} centres with 4 neighbours ≤ 3.5 Å "
                f"({len(oxygen) - len(idx)} excluded). Wasserstein distance to theory: "
                f"S_k {dist['wasserstein_S_k']:.4g}, S_g {dist['wasserstein_S_g']:.4g}; "
                f"joint EMD {dist['emd_2d']:.4g}, MMD {dist['mmd']:.4g}")
        else:
            self.summary.setText(f"{len(oxygen)} O: none has four O neighbours within 3.5 Å")
        self._done_generation = generation

    def export_figure(self, path) -> Path:
        """Save the histograms at 1050×630 px (PNG) whatever the dock's size."""
        return Path(self.canvas.export(Path(path)))

    def export_csv(self, path) -> Path:
        from ..order import write_order_csv

        if self.report is None:
            raise ValueError("nothing to export yet")
        idx, sk, sg, oxygen, dist = self.report
        return write_order_csv(path, idx, sk, sg, positions_A=oxygen,
                               distances=dist)

    def _ask_save(self, what):
        if what == "figure":
            path, _ = QFileDialog.getSaveFileName(self, "Save figure", "order.png", "PNG (*.png);;SVG (*.svg)")
            if path:
                self.export_figure(path)
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Save numbers", "order.csv", "CSV (*.csv)")
            if path:
                self.export_csv(path)
