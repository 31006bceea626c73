"""Screenshots of the real viewer for README and docs (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py [viewer resim order translate]

Writes docs/images/viewer.png (sample + predicted atoms), resim.png (side-by-side
re-simulation), order.png (histogram dock) and translate.png.
"""

from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_afm_style._qt.order_widget import OrderWidget
from napari_afm_style._qt.predict_widget import PredictWidget
from napari_afm_style._qt.resim_widget import ResimWidget
from napari_afm_style._qt.translate_widget import TranslateWidget

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def wait_for(predicate, timeout_s=300):
    import time

    t0 = time.time()
    while not predicate():
        QApplication.processEvents()
        time.sleep(0.05)
        if time.time() - t0 > timeout_s:
            raise TimeoutError


def main():
    import sys

    only = set(sys.argv[1:]) or {"viewer", "resim", "order", "translate"}
    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-afm-style")
    viewer.window._qt_window.resize(1500, 900)
    layers = viewer.open_sample("napari-afm-style", "water_sim")
    image = layers[0]
    viewer.dims.set_point(0, image.translate[0] + image.scale[0] * 9)
    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="Predict atoms", area="right")
    predict.image.setCurrentText(image.name)
    predict.run()
    wait_for(lambda: predict.points_layer is not None)
    viewer.layers[1].visible = False  # the true structure: shown in resim below
    viewer.screenshot(str(OUT / "viewer.png"), canvas_only=False)

    resim = ResimWidget(viewer)
    viewer.window.add_dock_widget(resim, name="Re-simulate", area="right", tabify=True)
    resim.image.setCurrentText(image.name)
    resim.points.setCurrentText(predict.points_layer.name)
    resim.show_difference.setChecked(True)
    resim.run()
    wait_for(lambda: resim.result is not None)
    viewer.reset_view()
    viewer.screenshot(str(OUT / "resim.png"), canvas_only=False)

    order = OrderWidget(viewer)
    viewer.window.add_dock_widget(order, name="Tetrahedral order", area="right", tabify=True)
    viewer.layers["true structure"].visible = True
    order.points.setCurrentText("true structure")
    order.update_plot()
    QApplication.processEvents()
    viewer.screenshot(str(OUT / "order.png"), canvas_only=False)
    if "translate" not in only:
        viewer.close()
        return

    viewer.close()
    viewer = napari.Viewer(title="napari-afm-style")
    viewer.window._qt_window.resize(1500, 900)
    exp = viewer.open_sample("napari-afm-style", "water_experiment_like")[0]
    translate = TranslateWidget(viewer)
    viewer.window.add_dock_widget(translate, name="Style translation", area="right", tabify=True)
    translate.image.setCurrentText(exp.name)
    translate.run()
    wait_for(lambda: translate.output_layer is not None)
    # beside the scan (same heights), so both are seen at once
    out = translate.output_layer
    out.translate = (out.translate[0], out.translate[1], out.translate[2] + 18.0)
    viewer.reset_view()
    viewer.dims.set_point(0, exp.translate[0] + exp.scale[0] * 9)
    viewer.screenshot(str(OUT / "translate.png"), canvas_only=False)
    viewer.close()
    print("screenshots in", OUT)


if __name__ == "__main__":
    main()
