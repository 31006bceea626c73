"""Prediction and translation docks on the bundled samples, with the shipped models."""

import numpy as np
import pytest

from napari_afm_style.predict import list_models


@pytest.mark.skipif("pure" not in list_models(), reason="no shipped structure model")
def test_predict_widget_points_threshold_and_xyz(make_napari_viewer, qtbot, tmp_path):
    from napari_afm_style._qt.predict_widget import PredictWidget
    from napari_afm_style.io import read_atoms

    viewer = make_napari_viewer()
    image, truth = viewer.open_sample("napari-afm-style", "water_sim")
    widget = PredictWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.value = image
    widget.model.value = "pure"
    widget.run()
    qtbot.waitUntil(lambda: widget.points_layer is not None, timeout=60_000)
    layer = widget.points_layer
    assert set(layer.features.columns) >= {"element", "z_A", "confidence"}
    assert set(layer.features["element"]) <= {"O", "H"} and "O" in set(layer.features["element"])
    assert layer.projection_mode == "all"  # visible over the scan on every slice
    n_default = len(layer.data)
    # the slider starts at the model's threshold for the views it averaged
    assert widget.threshold_value == pytest.approx(widget.maps.default_threshold, abs=0.006)
    assert widget.maps.info["test_time_augmentation_views"] >= 1
    # the atoms sit under the scanned window, ~3 Å below the closest tip height
    stack = image.metadata["afm_stack"]
    z = np.asarray(layer.features["z_A"])
    assert np.all(z < stack.heights_A[-1] - 1.0)
    # threshold slider: no network re-run, fewer atoms at a higher threshold
    maps = widget.maps
    widget.threshold.value = 0.95
    # the points follow once the slider rests (debounced), with exactly the atoms the maps
    # hold above the new threshold (an unconnected slider fails)
    assert widget.threshold_pending
    qtbot.waitUntil(lambda: not widget.threshold_pending, timeout=5_000)
    assert widget.maps is maps and len(layer.data) == len(maps.atoms(widget.threshold_value)) < n_default
    widget.threshold.value = 0.10
    qtbot.waitUntil(lambda: not widget.threshold_pending, timeout=5_000)
    assert len(layer.data) == len(maps.atoms(widget.threshold_value)) > n_default
    assert len(layer.features) == len(layer.size) == len(layer.face_color) == len(layer.data)
    # the height slider still covers exactly the stack's slices (one range update, not four)
    assert viewer.dims.nsteps[0] == len(stack.heights_A)
    # edit by hand (delete one atom) and export with elements kept
    layer.selected_data = {0}
    layer.remove_selected()
    out = tmp_path / "pred.xyz"
    viewer.layers.selection.active = layer
    viewer.layers.save(str(out), selected=True, plugin="napari-afm-style")
    atoms = read_atoms(out)
    assert len(atoms) == len(layer.data)
    assert atoms.get_chemical_symbols() == list(layer.features["element"])
    # a chosen number of averaged views re-runs the network with it
    widget.views.value = 4
    assert not widget.jobs.running  # the slot is free once the first job's result is in
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.maps is not maps and widget.maps.info["test_time_augmentation_views"] == 4,
                    timeout=60_000)


def test_translate_widget_strength_slider(make_napari_viewer, qtbot):
    from napari_afm_style._qt.translate_widget import TranslateWidget
    from napari_afm_style.translate import TranslatorNotAvailable, load_translator

    try:
        load_translator()
    except TranslatorNotAvailable:
        pytest.skip("no shipped translator")
    viewer = make_napari_viewer()
    image = viewer.open_sample("napari-afm-style", "water_experiment_like")[0]
    widget = TranslateWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.value = image
    widget.run()
    qtbot.waitUntil(lambda: widget.output_layer is not None, timeout=60_000)
    out = widget.output_layer
    assert np.allclose(out.scale, image.scale) and np.allclose(out.translate, image.translate)
    full = np.array(out.data)
    assert not np.allclose(full, image.data)
    translation = widget.translation
    widget.strength.value = 0.0  # strength 0: exactly the input, without re-running
    assert widget.translation is translation
    assert np.array_equal(np.asarray(out.data), np.asarray(image.data))
    widget.strength.value = 0.5
    half = np.asarray(out.data)
    assert np.allclose(half, 0.5 * (full + np.asarray(image.data)), atol=1e-4)
    assert out.metadata["afm_stack"].metadata["history"][-1]["step"].startswith("translate")


@pytest.mark.skipif("pure" not in list_models(), reason="no shipped structure model")
def test_docks_load_their_network_in_the_background_and_remember_the_device(make_napari_viewer, qtbot,
                                                                           tmp_path):
    """Opening a dock loads its network off the GUI thread; the device choice offers the CPU
    (and GPUs torch sees) and is remembered by the next dock."""
    from qtpy.QtCore import QSettings

    from napari_afm_style._qt import _jobs
    from napari_afm_style._qt.predict_widget import PredictWidget
    from napari_afm_style._qt.translate_widget import TranslateWidget

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    _jobs.settings().remove(_jobs.DEVICE_SETTING)
    viewer = make_napari_viewer()
    predict = PredictWidget(viewer)
    translate = TranslateWidget(viewer)
    assert predict.warm_worker is not None and translate.warm_worker is not None
    qtbot.waitUntil(lambda: predict.warm and translate.warm, timeout=120_000)
    assert ("predict", predict.model.value, "cpu") in _jobs._WARMED
    assert ("predict", predict.model.value, "cpu") in _jobs._PRIMED  # no job waited: it ran once
    devices = list(predict.device.choices)
    assert devices[0] == "cpu" and all(d.startswith("cuda:") for d in devices[1:])
    assert "model ready" in predict.jobs.status.text()
    predict.device.value = devices[-1]
    again = PredictWidget(viewer)
    qtbot.waitUntil(lambda: again.warm, timeout=120_000)
    assert again.device_value == devices[-1]


def test_predict_dock_says_which_input_the_model_reads_best(make_napari_viewer):
    from napari_afm_style._layers import STACK_KEY, stack_layer_data
    from napari_afm_style._qt.predict_widget import PredictWidget
    from napari_afm_style.models.shipped import BEST_BACKWARD_STRENGTH, DEFAULT_MODEL

    viewer = make_napari_viewer()
    scan = viewer.open_sample("napari-afm-style", "water_experiment_like")[0]
    widget = PredictWidget(viewer)
    # the default path: the default model on the raw scan, and the dock agrees
    assert BEST_BACKWARD_STRENGTH[DEFAULT_MODEL] == 0.0
    assert widget.image.layer() is scan and widget.advice.value == f"{DEFAULT_MODEL} reads raw scans best"
    widget.model.value = "handcrafted"
    assert widget.advice.value == ("handcrafted reads scans translated backward at strength 1 best: "
                                   "translate the scan backward at strength 1 first")
    # a backward translation (as the Translate dock records it) appears and is chosen
    stack = scan.metadata[STACK_KEY]
    meta = dict(stack.metadata, translation={"direction": "backward", "strength": 1.0})
    d, k, _ = stack_layer_data(stack.replace(metadata=meta), name="translated")
    viewer.add_image(d, **k)
    assert widget.image.layer().name == "translated"
    assert widget.advice.value == "handcrafted reads scans translated backward at strength 1 best"
    widget.model.value = DEFAULT_MODEL
    assert widget.advice.value.endswith(": choose the raw scan")
