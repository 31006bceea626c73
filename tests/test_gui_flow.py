"""The whole GUI path driven as a person would, asserting on what they see."""

import numpy as np
import pytest
from PIL import Image

from napari_afm_style.predict import list_models
from napari_afm_style.translate import TranslatorNotAvailable, load_translator


def _front_tab(viewer):
    from qtpy.QtWidgets import QTabBar

    for bar in viewer.window._qt_window.findChildren(QTabBar):
        texts = [bar.tabText(i) for i in range(bar.count())]
        if "Tetrahedral order" in texts:
            return bar.tabText(bar.currentIndex())
    return None


def _have_models():
    try:
        load_translator()
    except TranslatorNotAvailable:
        return False
    return bool(list_models())


@pytest.mark.skipif(not _have_models(), reason="no shipped translator or structure model")
def test_whole_path_open_translate_predict_edit_resimulate_order_save(make_napari_viewer, qtbot, tmp_path):
    from napari_afm_style.demo import build_gui
    from napari_afm_style.io import read_atoms

    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    w = build_gui(viewer, "experiment_like")
    scan = viewer.layers[0]
    heights = scan.metadata["afm_stack"].heights_A
    # most of the screen, with the first step in front, not the empty order plot
    screen = QApplication.primaryScreen().availableGeometry()
    _, _, win_w, win_h = viewer.window.geometry()
    assert win_w >= 0.8 * screen.width() and win_h >= 0.8 * screen.height()
    qtbot.waitUntil(lambda: _front_tab(viewer) == "Style translation", timeout=5_000)

    # translate backward, then look at two strengths with the slider
    tw = w["translate"]
    assert tw.image.layer() is scan and tw.direction_value == "backward"
    assert tw.run() is not None
    qtbot.waitUntil(lambda: tw.output_layer is not None, timeout=120_000)
    translated = tw.output_layer
    assert tw.image.layer() is scan  # Translate stays on the scan; the next docks follow
    tw.strength.value = 0.5
    half = np.array(translated.data)
    tw.strength.value = 1.0
    assert not np.allclose(half, translated.data)

    # the Predict dock followed the new layer and says that the default model reads raw
    # scans best; a person takes the advice and predicts on the scan (the default path)
    pw = w["predict"]
    assert pw.image.layer() is translated
    assert pw.model.value == "hybrid" and "choose the raw scan" in pw.advice.value
    pw.image.choose(scan.name)
    assert pw.advice.value == "hybrid reads raw scans best"
    assert pw.run() is not None
    qtbot.waitUntil(lambda: pw.points_layer is not None, timeout=120_000)
    atoms = pw.points_layer
    assert len(atoms.data) > 10

    # the height slider moves through exactly the stack's heights; atoms on every slice
    assert viewer.dims.nsteps[0] == len(heights)
    assert viewer.dims.range[0].start == pytest.approx(heights.min())
    assert viewer.dims.range[0].stop == pytest.approx(heights.max())
    for i in (0, len(heights) - 1):
        viewer.dims.set_current_step(0, i)
        assert len(atoms._view_indices) == len(atoms.data)

    # the order plot shows the new layer, then follows an edit by hand
    ow = w["order"]
    qtbot.waitUntil(lambda: ow.plotted == atoms.name and not ow.pending, timeout=60_000)
    assert ow.canvas.drawn_bars() > 0
    before = ow.report[3].copy()
    oxygen = np.flatnonzero(np.asarray(atoms.features["element"]) == "O")
    data = np.array(atoms.data)
    data[oxygen[0], 2] += 0.4  # move one O by 0.4 Å in x
    atoms.data = data
    qtbot.waitUntil(lambda: not ow.pending, timeout=60_000)
    assert not np.allclose(ow.report[3], before) and ow.canvas.drawn_bars() > 0

    # re-simulate the edited prediction on the scan it was predicted from (chosen with it)
    rw = w["resim"]
    assert rw.points.layer() is atoms and rw.image.layer() is scan
    assert rw.run() is not None
    qtbot.waitUntil(lambda: rw.result is not None, timeout=300_000)
    simulated, scores = rw.result
    closest = int(np.argmin(scores["heights_A"]))
    print(f"closest-slice NCC {scores['ncc'][closest]:.3f}; {rw.placement['note']}")
    assert scores["ncc"][closest] >= 0.7
    assert "tip height" in rw.scores.text() and "closest slice NCC" in rw.scores.text()
    assert viewer.dims.nsteps[0] == len(heights)  # the re-simulation beside it: same heights
    # the pickers stay on the scan (a second re-simulation runs against it, not against the
    # re-simulation), and the difference layer is never offered as a Δf stack
    assert rw.image.layer() is scan and pw.image.layer() is scan
    rw.show_difference.value = True
    rw.result = None
    assert rw.run() is not None
    qtbot.waitUntil(lambda: rw.result is not None, timeout=300_000)
    assert rw.diff_layer is not None and all(c is not rw.diff_layer for c in pw.image.choices)
    assert rw.image.layer() is scan
    # a point added by hand is a sure O of an atom's size
    atoms.add([[float(heights.min()) - 3.0, 8.0, 8.0]])
    assert atoms.features["element"].iloc[-1] == "O" and atoms.features["confidence"].iloc[-1] == 1.0
    assert atoms.size[-1] < 1.0
    qtbot.waitUntil(lambda: not ow.pending, timeout=60_000)

    # save the atoms as XYZ and the order figure
    out = tmp_path / "atoms.xyz"
    viewer.layers.selection.active = atoms
    viewer.layers.save(str(out), selected=True, plugin="napari-afm-style")
    assert len(read_atoms(out)) == len(atoms.data)
    png = ow.export_figure(tmp_path / "order.png")
    width, height = Image.open(png).size
    print(f"order figure {width}×{height} px")
    assert width >= 600 and height >= 400
