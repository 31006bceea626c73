"""A matplotlib canvas for napari docks that follows napari's light/dark theme."""

from __future__ import annotations

import matplotlib

matplotlib.use("QtAgg")  # noqa: E402  (the dock lives in a Qt application)
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.theme import get_theme
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget


class ThemedCanvas(QWidget):
    """Base class: owns a Figure whose colours track ``viewer.theme``.

    Subclasses draw in :meth:`draw_on` (any Figure: the on-screen one, or a fresh one of
    a fixed size for export) and call :meth:`refresh`. The canvas has a minimum size, so
    that docks stacked in one column cannot squeeze the plot to a strip.
    """

    #: smallest on-screen size (px) that still shows two labelled histograms
    MIN_SIZE = (360, 260)

    def __init__(self, viewer, parent=None, figsize=(5, 3)):
        super().__init__(parent)
        self.viewer = viewer
        self.figure = Figure(figsize=figsize, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumSize(*self.MIN_SIZE)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(*self.MIN_SIZE)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        viewer.events.theme.connect(self._on_theme)
        self._colors = self._theme_colors()

    def _theme_colors(self) -> dict:
        theme = get_theme(self.viewer.theme)
        return {
            "background": theme.canvas.as_hex(),
            "foreground": theme.text.as_hex(),
            "accent": theme.highlight.as_hex() if hasattr(theme, "highlight") else "#1f77b4",
        }

    def _on_theme(self, event=None):
        self._colors = self._theme_colors()
        self.refresh()

    def style_axes(self, ax):
        fg, bg = self._colors["foreground"], self._colors["background"]
        ax.set_facecolor(bg)
        for spine in ax.spines.values():
            spine.set_color(fg)
        ax.tick_params(colors=fg)
        ax.xaxis.label.set_color(fg)
        ax.yaxis.label.set_color(fg)
        ax.title.set_color(fg)
        legend = ax.get_legend()
        if legend is not None:
            self.style_legend(legend)

    def style_legend(self, legend):
        legend.get_frame().set_facecolor(self._colors["background"])
        legend.get_frame().set_edgecolor(self._colors["foreground"])
        for text in legend.get_texts():
            text.set_color(self._colors["foreground"])

    def draw_on(self, figure):  # pragma: no cover - subclasses draw
        raise NotImplementedError

    def draw(self):
        self.draw_on(self.figure)

    def refresh(self):
        self.figure.clear()
        self.figure.set_facecolor(self._colors["background"])
        self.draw()
        self.canvas.draw_idle()

    def export(self, path, size_in=(7.0, 4.2), dpi=150):
        """Save the plot at a fixed size (default 1050×630 px), whatever the dock's size
        on screen, in the current theme's colours."""
        fig = Figure(figsize=size_in, dpi=dpi, layout="constrained")
        fig.set_facecolor(self._colors["background"])
        self.draw_on(fig)
        fig.savefig(path, dpi=dpi, facecolor=fig.get_facecolor())
        return path
