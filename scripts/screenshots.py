"""Screenshots of the real viewer for README and docs, taken along the GUI path of
``tests/test_gui_flow.py`` (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py

``afm-style gui``'s window (``demo.build_gui``) on the experiment-like sample: translate
backward → translate.png; predict on the raw scan (the default path) → viewer.png (atoms on
the scan, README); re-simulate
beside the scan → resim.png; the order dock in front → order.png.
"""

import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_afm_style.demo import build_gui

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def wait_for(predicate, timeout_s=300, settle_s=0.5):
    t0 = time.time()
    while not predicate():
        QApplication.processEvents()
        time.sleep(0.02)
        if time.time() - t0 > timeout_s:
            raise TimeoutError
    end = time.time() + settle_s  # let repaints (and the order plot's drawing) finish
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-afm-style")
    w = build_gui(viewer, "experiment_like")
    wait_for(lambda: w["translate"].warm and w["predict"].warm)
    scan = viewer.layers[0]

    tw = w["translate"]
    tw.run()
    wait_for(lambda: tw.output_layer is not None and not tw.jobs.running)
    scan.visible = False
    viewer.screenshot(str(OUT / "translate.png"), canvas_only=False)

    w["docks"]["predict"].raise_()
    pw = w["predict"]
    pw.image.choose(scan.name)  # the default path: the default model on the raw scan
    scan.visible = True
    tw.output_layer.visible = False
    pw.run()
    wait_for(lambda: pw.points_layer is not None and not pw.jobs.running)
    viewer.screenshot(str(OUT / "viewer.png"), canvas_only=False)

    w["docks"]["resim"].raise_()
    rw = w["resim"]
    rw.run()
    wait_for(lambda: rw.result is not None and not rw.jobs.running)
    viewer.reset_view()
    wait_for(lambda: True)
    viewer.screenshot(str(OUT / "resim.png"), canvas_only=False)

    w["docks"]["order"].raise_()
    ow = w["order"]
    wait_for(lambda: ow.plotted == pw.points_layer.name and not ow.pending, settle_s=1.0)
    viewer.screenshot(str(OUT / "order.png"), canvas_only=False)
    viewer.close()
    print("screenshots in", OUT)


if __name__ == "__main__":
    main()
