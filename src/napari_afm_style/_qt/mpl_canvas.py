"""A matplotlib canvas for napari docks that follows napari's light/dark theme and draws
off the GUI thread.

matplotlib itself is imported off the GUI thread too (0.15–0.3 s): a background import
starts when a canvas is made, and the drawing threads import it where they need it.
"""

from __future__ import annotations

import numpy as np
from napari.utils.theme import get_theme
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..io._atomic import save_figure
from ._background import background


def import_matplotlib():
    """Import the parts of matplotlib a canvas draws with (Figure, Agg); any thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def _render(draw_on, state: dict, width_px: int, height_px: int, dpi: float, background: str):
    """Draw a fresh Figure with ``draw_on(figure, state)`` and rasterise it with Agg (any
    thread: no pyplot, no Qt). Returns the figure and its RGBA pixels."""
    Figure, FigureCanvasAgg = import_matplotlib()
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    fig.set_facecolor(background)
    draw_on(fig, state)
    canvas.draw()
    return fig, np.asarray(canvas.buffer_rgba()).copy()


class ThemedCanvas(QWidget):
    """Base class: shows a matplotlib figure whose colours track ``viewer.theme``.

    Subclasses draw in :meth:`draw_on` (any Figure: the on-screen one, or a fresh one of a
    fixed size for export) from the plain-data :meth:`state`, and call :meth:`refresh`.
    Laying out and rasterising a figure with text costs 100–250 ms, so it happens in a
    worker thread (Agg, no pyplot); the GUI thread only shows the finished image. The
    canvas has a minimum size, so that docks stacked in one column cannot squeeze the plot
    to a strip, and it is redrawn at its new size after a resize (debounced).
    """

    #: smallest on-screen size (px) that still shows two labelled histograms
    MIN_SIZE = (360, 260)
    DPI = 100.0

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.figure = None  # the last figure drawn on screen (read it, do not draw on it)
        self.canvas = QLabel()
        self.canvas.setMinimumSize(*self.MIN_SIZE)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(*self.MIN_SIZE)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        viewer.events.theme.connect(self._on_theme)
        self._colors = self._theme_colors()
        self._requested = 0  # render requests made
        self._shown = 0  # the request whose image is on screen
        self._resize = QTimer(self)
        self._resize.setSingleShot(True)
        self._resize.setInterval(120)
        self._resize.timeout.connect(self.refresh)
        # matplotlib is imported in the background while the dock opens, not on the GUI thread
        self._import_worker = background(import_matplotlib)
        self._import_worker.start()

    # -- colours ---------------------------------------------------------------------------
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

    @staticmethod
    def style_axes(ax, colors):
        fg, bg = colors["foreground"], colors["background"]
        ax.set_facecolor(bg)
        for spine in ax.spines.values():
            spine.set_color(fg)
        ax.tick_params(colors=fg)
        ax.xaxis.label.set_color(fg)
        ax.yaxis.label.set_color(fg)
        ax.title.set_color(fg)

    @staticmethod
    def style_legend(legend, colors):
        legend.get_frame().set_facecolor(colors["background"])
        legend.get_frame().set_edgecolor(colors["foreground"])
        for text in legend.get_texts():
            text.set_color(colors["foreground"])
        legend.get_title().set_color(colors["foreground"])

    # -- drawing ---------------------------------------------------------------------------
    def state(self) -> dict:
        """What :meth:`draw_on` needs, as plain data (a snapshot: the drawing thread never
        reads the widget)."""
        return {"colors": dict(self._colors)}

    def draw_on(self, figure, state: dict):  # pragma: no cover - subclasses draw
        raise NotImplementedError

    @property
    def pending(self) -> bool:
        """True while a requested drawing has not reached the screen."""
        return self._shown != self._requested

    def refresh(self):
        """Redraw in a worker thread at the canvas's current size."""
        self._requested += 1
        request = self._requested
        ratio = self.canvas.devicePixelRatioF()
        w = max(self.canvas.width(), self.MIN_SIZE[0])
        h = max(self.canvas.height(), self.MIN_SIZE[1])
        worker = background(
            _render, self.draw_on, self.state(), int(w * ratio), int(h * ratio), self.DPI * ratio,
            self._colors["background"])
        worker.returned.connect(lambda result, r=request, k=ratio: self._show(result, r, k))
        worker.errored.connect(lambda exc, r=request: self._failed(r))
        worker.start()

    def _failed(self, request):
        if request == self._requested:
            self._shown = request

    def _show(self, result, request, ratio):
        if request != self._requested:
            return  # a newer drawing is on its way
        fig, rgba = result
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(ratio)
        try:
            self.canvas.setPixmap(pixmap)
        except RuntimeError:  # the dock was closed while its drawing was on the way
            return
        self.figure = fig
        self._shown = request

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self._requested:
            self._resize.start()

    def export(self, path, size_in=(7.0, 4.2), dpi=150):
        """Save the plot at a fixed size (default 1050×630 px), whatever the dock's size
        on screen, in the current theme's colours."""
        Figure, FigureCanvasAgg = import_matplotlib()
        fig = Figure(figsize=size_in, dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        fig.set_facecolor(self._colors["background"])
        self.draw_on(fig, self.state())
        return save_figure(fig, path, dpi=dpi, facecolor=fig.get_facecolor())
