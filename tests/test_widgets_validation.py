"""Re-simulation and order-histogram docks in a real headless viewer (Xvfb)."""

import numpy as np
import pytest
from ase import Atoms

from napari_afm_style._layers import atoms_layer_data, stack_layer_data



@pytest.fixture(scope="module")
def water_scan():
    """A small ppafm simulation of two water molecules on Au(111) + its full geometry."""
    from napari_afm_style.simulate import scan_like, simulate
    from napari_afm_style.structures import au111_slab

    water = Atoms("OH2OH2", positions=[
        [0.0, 0.0, 8.0], [0.96, 0.0, 8.0], [-0.24, 0.93, 8.0],
        [2.2, 1.5, 7.4], [2.2, 2.46, 7.6], [3.1, 1.3, 7.2]])
    full = water + au111_slab(size_A=(20.0, 20.0), layers=1)
    like = scan_like(full, n_heights=3, height_step_A=0.2, pixel_size_A=0.25, size_px=(32, 32),
                     closest_height_A=11.2, center_xy_A=(1.0, 1.0))
    return simulate(full, like), full


def test_resim_widget_reproduces_true_geometry(make_napari_viewer, qtbot, water_scan):
    from napari_afm_style._qt.resim_widget import ResimWidget

    stack, full = water_scan
    viewer = make_napari_viewer()
    d, k, _ = stack_layer_data(stack, name="scan")
    scan_layer = viewer.add_image(d, **k)
    d, k, _ = atoms_layer_data(full, name="truth")
    viewer.add_points(d, **k)
    widget = ResimWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.image.choose("scan")
    widget.points.choose("truth")
    widget.show_difference.value = True
    widget.run()
    qtbot.waitUntil(lambda: widget.result is not None, timeout=120_000)
    simulated, scores = widget.result
    assert min(scores["ncc"]) >= 0.99
    assert simulated.shape == stack.shape
    # shown beside the scan: same heights and scale, shifted in x by the window + gap
    sim_layer = widget.sim_layer
    assert np.allclose(sim_layer.scale, scan_layer.scale)
    assert sim_layer.translate[2] == pytest.approx(scan_layer.translate[2] + stack.extent_A[0] + widget.GAP_A)
    assert widget.diff_layer is not None and "NCC" in widget.scores.text()
    # the atoms (several Å under the tip) are drawn over the scan on the closest slice
    viewer.dims.set_point(0, stack.heights_A[-1])
    truth = viewer.layers["truth"]
    assert len(truth._view_indices) == len(truth.data)


def test_resim_widget_completes_oxygen_only_structure(make_napari_viewer, qtbot, water_scan):
    from napari_afm_style._qt.resim_widget import ResimWidget

    stack, full = water_scan
    viewer = make_napari_viewer()
    d, k, _ = stack_layer_data(stack, name="scan")
    viewer.add_image(d, **k)
    oxygen = full[[s == "O" for s in full.get_chemical_symbols()]]
    d, k, _ = atoms_layer_data(oxygen, name="O only")
    points = viewer.add_points(d, **k)
    widget = ResimWidget(viewer)
    widget.points.choose("O only")
    assert widget.run() is not None
    assert widget.run() is None  # one job at a time, and the user is told why
    assert "still running" in widget.jobs.status.text()
    qtbot.waitUntil(lambda: widget.result is not None, timeout=120_000)
    simulated, right = widget.result
    assert np.all(np.isfinite(simulated.data))
    # the edit-and-re-run loop: move the molecules 2.5 Å off their true place; the
    # completed (H by ice rules, slab added) true O positions must match better
    # the job slot is free as soon as the result is in, before the thread's `finished`
    assert not widget.jobs.running
    widget.result = None
    points.data = points.data + np.array([0.0, 2.5, 0.0])
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.result is not None, timeout=120_000)
    _, wrong = widget.result
    assert right["ncc_mean"] > wrong["ncc_mean"] + 0.2
    assert right["ssim_mean"] > wrong["ssim_mean"]


def test_resim_widget_reports_bad_input_without_crashing(make_napari_viewer):
    from napari_afm_style._qt.resim_widget import ResimWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 8, 8)), name="foreign image")
    widget = ResimWidget(viewer)
    assert widget.run() is None
    assert "choose" in widget.jobs.status.text()


def _settled(qtbot, widget):
    """Wait until the order dock's debounced background computation reached the plot."""
    qtbot.waitUntil(lambda: not widget.pending, timeout=30_000)


def test_order_widget_updates_when_points_change(make_napari_viewer, qtbot, tmp_path):
    from napari_afm_style._qt.order_widget import OrderWidget
    from napari_afm_style.structures import generate_structure

    atoms = generate_structure(7, kind="bilayer")
    water = atoms[[s in ("O", "H") for s in atoms.get_chemical_symbols()]]
    viewer = make_napari_viewer()
    d, k, _ = atoms_layer_data(water, name="ice")
    layer = viewer.add_points(d, **k)
    widget = OrderWidget(viewer)
    viewer.window.add_dock_widget(widget)
    _settled(qtbot, widget)
    idx, sk, sg, _, dist = widget.report
    assert len(idx) > 0 and np.isfinite(dist["wasserstein_S_g"])
    assert "Wasserstein" in widget.summary.text()
    before = len(idx)
    # deleting atoms by hand updates the statistics
    oxygen = np.flatnonzero(np.asarray(layer.features["element"]) == "O")
    layer.selected_data = set(oxygen[: len(oxygen) // 2].tolist())
    layer.remove_selected()
    _settled(qtbot, widget)
    assert len(widget.report[0]) < before
    png = widget.export_figure(tmp_path / "order.png")
    svg = widget.export_figure(tmp_path / "order.svg")
    csv = widget.export_csv(tmp_path / "order.csv")
    assert png.stat().st_size > 1000 and svg.read_text().lstrip().startswith("<?xml")
    assert "S_k" in csv.read_text()
    # theme switch redraws without error
    viewer.theme = "light"
    assert widget.canvas._colors["background"] != ""


def test_resim_widget_cancel_frees_the_slot_without_a_result(make_napari_viewer, qtbot, water_scan):
    from napari_afm_style._qt.resim_widget import ResimWidget

    stack, full = water_scan
    viewer = make_napari_viewer()
    d, k, _ = stack_layer_data(stack, name="scan")
    viewer.add_image(d, **k)
    d, k, _ = atoms_layer_data(full[[s == "O" for s in full.get_chemical_symbols()]], name="O only")
    viewer.add_points(d, **k)
    widget = ResimWidget(viewer)
    widget.points.choose("O only")
    assert widget.run() is not None
    widget.jobs.cancel()
    qtbot.waitUntil(lambda: not widget.jobs.running, timeout=120_000)
    assert widget.result is None and widget.sim_layer is None
    assert widget.jobs.status.text() == "cancelled"
    assert widget.jobs.run_button.isEnabled() and not widget.jobs.cancel_button.isEnabled()


def test_order_dock_follows_a_points_layer_made_after_it_and_pickers_follow_new_layers(make_napari_viewer, qtbot):
    """The order dock is opened first; atoms predicted later must be plotted without touching
    the dock, and a newly made layer becomes the choice of every picker of its type."""
    from napari_afm_style._qt.order_widget import OrderWidget
    from napari_afm_style.structures import generate_structure

    viewer = make_napari_viewer()
    widget = OrderWidget(viewer)
    viewer.window.add_dock_widget(widget)
    _settled(qtbot, widget)
    assert widget.report is None and "choose" in widget.summary.text()
    atoms = generate_structure(7, kind="bilayer")
    water = atoms[[s in ("O", "H") for s in atoms.get_chemical_symbols()]]
    d, k, _ = atoms_layer_data(water, name="predicted")
    viewer.add_points(d, **k)
    assert widget.points.current_name == "predicted"
    _settled(qtbot, widget)
    assert widget.report is not None and len(widget.report[0]) > 0
    assert "Wasserstein" in widget.summary.text()
    assert widget.canvas.hist is not None  # the histogram has data to draw
    # a second structure made later becomes the choice, and the plot follows it
    d2, k2, _ = atoms_layer_data(water[: len(water) // 2], name="edited")
    viewer.add_points(d2, **k2)
    assert widget.points.current_name == "edited"
    _settled(qtbot, widget)
    assert len(widget.report[3]) < len(water[[s == "O" for s in water.get_chemical_symbols()]])


def test_order_dock_computes_off_the_gui_thread_debounced_and_keeps_its_size(make_napari_viewer, qtbot,
                                                                             tmp_path):
    """Many quick edits compute once, in a worker thread; the plot has a minimum size
    and the saved figure is a full-size figure however the dock is squeezed."""
    import threading

    from PIL import Image

    import napari_afm_style._qt.order_widget as ow
    from napari_afm_style.structures import generate_structure

    threads = []
    original = ow._order_job

    def spy(*args):
        threads.append(threading.current_thread())
        return original(*args)

    viewer = make_napari_viewer()
    atoms = generate_structure(7, kind="bilayer")
    water = atoms[[s in ("O", "H") for s in atoms.get_chemical_symbols()]]
    d, k, _ = atoms_layer_data(water, name="ice")
    layer = viewer.add_points(d, **k)
    ow._order_job = spy
    try:
        widget = ow.OrderWidget(viewer)
        viewer.window.add_dock_widget(widget)
        _settled(qtbot, widget)
        for i in range(5):  # a drag: five edits in quick succession
            layer.data = layer.data + np.array([0.0, 0.01, 0.0])
        _settled(qtbot, widget)
    finally:
        ow._order_job = original
    assert len(threads) == 2  # the first plot and one for the whole drag
    assert all(t is not threading.main_thread() for t in threads)
    assert widget.plotted == "ice" and widget.canvas.drawn_bars() > 0
    assert widget.canvas.canvas.minimumWidth() >= 300 and widget.canvas.canvas.minimumHeight() >= 200
    widget.canvas.resize(50, 10)
    png = widget.export_figure(tmp_path / "order.png")
    w, h = Image.open(png).size
    assert w >= 600 and h >= 400


def test_height_slider_spans_the_stack_and_atoms_show_on_every_slice(make_napari_viewer):
    """Atoms several Å under the tip must not stretch the height slider beyond the stack's
    slices (the scan would be blank on most of it), and they are drawn on every slice."""
    from napari_afm_style._qt.order_widget import OrderWidget

    viewer = make_napari_viewer()
    image = viewer.open_sample("napari-afm-style", "water_experiment_like")[0]
    OrderWidget(viewer)
    heights = image.metadata["afm_stack"].heights_A
    d, k, _ = atoms_layer_data(Atoms("OH", positions=[[5, 5, -6.0], [5, 6, -2.4]]), name="atoms")
    points = viewer.add_points(d, **k)
    assert viewer.dims.nsteps[0] == len(heights)
    r = viewer.dims.range[0]
    assert r.start == pytest.approx(heights.min()) and r.stop == pytest.approx(heights.max())
    for i in range(len(heights)):
        viewer.dims.set_current_step(0, i)
        assert len(points._view_indices) == 2
        assert np.asarray(image._slice.image.raw).std() > 0  # the scan is shown, not blank
    points.data = points.data + 0.1  # an edit re-sizes the axes: still the stack's heights
    assert viewer.dims.nsteps[0] == len(heights)


def test_magicgui_layer_pickers_follow_renames_removals_and_new_layers(make_napari_viewer, water_scan):
    from magicgui.widgets import Container

    from napari_afm_style._qt.resim_widget import ResimWidget

    stack, full = water_scan
    viewer = make_napari_viewer()
    widget = ResimWidget(viewer)
    assert isinstance(widget.form, Container)
    assert widget.image.layer() is None  # nothing open yet
    d, k, _ = stack_layer_data(stack, name="scan")
    scan = viewer.add_image(d, **k)
    viewer.add_image(np.zeros((2, 4, 4)), name="foreign image")  # no AFM stack: not offered
    assert widget.image.layer() is scan and len([c for c in widget.image.choices if c is not None]) == 1
    seen = []
    widget.points.changed.connect(seen.append)
    d, k, _ = atoms_layer_data(full, name="first")
    first = viewer.add_points(d, **k)
    d, k, _ = atoms_layer_data(full[:5], name="second")
    second = viewer.add_points(d, **k)
    assert widget.points.layer() is second and seen[-1] is second  # the new layer is the choice
    second.name = "renamed"
    assert widget.points.layer() is second and widget.points.current_name == "renamed"
    viewer.layers.remove(second)
    assert widget.points.layer() is first and seen[-1] is first


def test_order_plot_keeps_its_size_when_the_four_docks_are_stacked(make_napari_viewer, qtbot):
    """The napari ▸ Plugins route stacks the docks in one column (no tabs) in a window of
    1089×630: the histogram must not collapse to a strip."""
    from napari_afm_style._qt.order_widget import OrderWidget
    from napari_afm_style._qt.predict_widget import PredictWidget
    from napari_afm_style._qt.resim_widget import ResimWidget
    from napari_afm_style._qt.translate_widget import TranslateWidget

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1089, 630)
    widgets = [cls(viewer) for cls in (TranslateWidget, PredictWidget, ResimWidget, OrderWidget)]
    for widget in widgets:
        viewer.window.add_dock_widget(widget, area="right")
    order = widgets[-1]
    qtbot.waitUntil(lambda: widgets[0].warm_finished and widgets[1].warm_finished, timeout=120_000)
    qtbot.wait(300)
    assert order.canvas.canvas.height() >= 250
    assert order.canvas.canvas.width() >= 350
