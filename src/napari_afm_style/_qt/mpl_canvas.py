"""A matplotlib canvas for napari docks that follows napari's light/dark theme."""

from __future__ import annotations

import matplotlib

matplotlib.use("QtAgg")  # noqa: E402  (the dock lives in a Qt application)
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.theme import get_theme
from qtpy.QtWidgets import QVBoxLayout, QWidget


class ThemedCanvas(QWidget):
    """Base class: owns a Figure whose colours track ``viewer.theme``.

    Subclasses draw in :meth:`draw` using ``self.figure`` and call :meth:`refresh`.
    """

    def __init__(self, viewer, parent=None, figsize=(5, 3)):
        super().__init__(parent)
        self.viewer = viewer
        self.figure = Figure(figsize=figsize, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
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
            legend.get_frame().set_facecolor(bg)
            for text in legend.get_texts():
                text.set_color(fg)

    def draw(self):  # pragma: no cover - subclasses draw
        raise NotImplementedError

    def refresh(self):
        self.figure.clear()
        self.figure.set_facecolor(self._colors["background"])
        self.draw()
        self.canvas.draw_idle()
