"""Histogram dock: tetrahedral order S_k / S_g of a Points layer against theory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QFileDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .._layers import atoms_from_points
from ._layer_choice import LayerComboBox, keep_atoms_visible
from .mpl_canvas import ThemedCanvas


class OrderHistogramCanvas(ThemedCanvas):
    """S_k and S_g histograms of the prediction over the theoretical reference."""

    def __init__(self, viewer, parent=None):
        super().__init__(viewer, parent, figsize=(5, 2.6))
        self.hist = None
        self.distances = None

    def draw(self):
        axes = self.figure.subplots(1, 2)
        fg = self._colors["foreground"]
        for ax, key, label in zip(axes, ("S_k", "S_g"), ("$S_k$", "$S_g$")):
            if self.hist is not None:
                h = self.hist[key]
                width = np.diff(h["edges"])
                if h["reference"] is not None:
                    ax.bar(h["centres"], h["reference"], width=width, color="#888888", alpha=0.6,
                           label="theory")
                w = self.distances.get(f"wasserstein_{key}", float("nan"))
                ax.step(h["edges"][:-1], h["prediction"], where="post", color="#e8553e", lw=1.8,
                        label=f"prediction (W = {w:.3g})")
                ax.legend(fontsize=7)
            ax.set_xlabel(label)
            ax.set_ylabel("density")
            self.style_axes(ax)
        if self.hist is None:
            axes[0].text(0.5, 0.5, "no O centres with 4 neighbours", transform=axes[0].transAxes,
                         ha="center", color=fg, fontsize=8)


class OrderWidget(QWidget):
    """Recomputes whenever the chosen Points layer changes (predicted, edited by hand)."""

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.report = None  # (centre_indices, S_k, S_g, positions, distances)
        self._watched = None
        self.points = LayerComboBox(napari_viewer, "points")
        self.canvas = OrderHistogramCanvas(napari_viewer)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.save_figure = QPushButton("Save figure…")
        self.save_csv = QPushButton("Save numbers (CSV)…")
        form = QFormLayout()
        form.addRow("structure", self.points)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_figure)
        buttons.addWidget(self.save_csv)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.points.currentTextChanged.connect(self._watch)
        self.save_figure.clicked.connect(lambda: self._ask_save("figure"))
        self.save_csv.clicked.connect(lambda: self._ask_save("csv"))
        self._watch()
        keep_atoms_visible(napari_viewer)

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
        from ..order import histogram_data, order_distances, tetrahedral_order

        layer = self.points.layer()
        if layer is None:
            self.summary.setText("choose a Points layer with O atoms")
            return
        try:
            atoms = atoms_from_points(layer.data, layer.features)
        except ValueError as e:
            self.summary.setText(str(e))
            return
        oxygen = atoms.positions[np.array(atoms.get_chemical_symbols()) == "O"]
        idx, sk, sg = tetrahedral_order(oxygen)
        dist = order_distances(oxygen) if len(idx) else {}
        self.report = (idx, sk, sg, oxygen, dist)
        self.canvas.hist = histogram_data(sk, sg) if len(idx) else None
        self.canvas.distances = dist
        self.canvas.refresh()
        if len(idx):
            self.summary.setText(
                f"{len(oxygen)} O, {len(idx)} centres with 4 neighbours ≤ 3.5 Å "
                f"({len(oxygen) - len(idx)} excluded). Wasserstein S_k {dist['wasserstein_S_k']:.4g}, "
                f"S_g {dist['wasserstein_S_g']:.4g}, joint EMD {dist['emd_2d']:.4g}, MMD {dist['mmd']:.4g}")
        else:
            self.summary.setText(f"{len(oxygen)} O: none has four O neighbours within 3.5 Å")

    def export_figure(self, path) -> Path:
        path = Path(path)
        self.canvas.figure.savefig(path, facecolor=self.canvas.figure.get_facecolor())
        return path

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
