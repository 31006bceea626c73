"""What keeps the window responsive, asserted on outcomes (never on wall time; the timings
are in benchmarks/bench_gui.py): nothing heavy is imported when a dock opens, the warm-up's
helpers leave the process as they found it, the threshold update reaches the viewer once,
new layers are shown on a later pass of the event loop."""

import gc
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from napari_afm_style._layers import atoms_layer_data, stack_layer_data


def _run(code: str, env=None) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_opening_the_docks_imports_neither_torch_nor_scipy_nor_matplotlib():
    out = _run("""
        import sys
        from napari_afm_style._qt import order_widget, predict_widget, resim_widget, translate_widget
        from napari_afm_style.models.shipped import DEFAULT_MODEL, list_models
        assert DEFAULT_MODEL in list_models()
        heavy = ("torch", "scipy.optimize", "scipy.ndimage", "matplotlib", "napari_afm_style.predict")
        print(sorted(m for m in heavy if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_predict_reexports_the_shipped_model_names():
    from napari_afm_style import predict
    from napari_afm_style.models import shipped

    assert predict.DEFAULT_MODEL == shipped.DEFAULT_MODEL
    assert predict.list_models() == shipped.list_models()


def test_torch_libraries_preloaded_then_torch_imports_and_runs():
    out = _run("""
        from napari_afm_style._qt._jobs import TORCH_LIBRARIES, preload_torch_libraries
        n = preload_torch_libraries()
        import torch
        print(n, len(TORCH_LIBRARIES), float(torch.ones(3).sum()), preload_torch_libraries())
    """)
    n, expected, total, again = out.split()
    if sys.platform.startswith("linux"):
        assert int(n) == int(expected)
    assert float(total) == 3.0 and int(again) == 0  # once torch is in, nothing more to do


def test_docks_leave_one_core_to_the_window_unless_threads_are_set():
    import os

    from napari_afm_style._qt._jobs import THREAD_SETTINGS

    env = {k: v for k, v in os.environ.items() if k not in THREAD_SETTINGS}
    out = _run("""
        import os
        from napari_afm_style._qt._jobs import leave_a_core_for_the_window
        print(len(os.sched_getaffinity(0)), leave_a_core_for_the_window())
    """, env=env)
    cores, threads = map(int, out.split())
    assert threads == max(1, cores - 1)
    out = _run("""
        import torch
        from napari_afm_style._qt._jobs import leave_a_core_for_the_window
        before = torch.get_num_threads()
        print(before, leave_a_core_for_the_window())
    """, env=dict(env, OMP_NUM_THREADS="2"))
    before, after = map(int, out.split())
    assert after == before == 2  # a person's own setting is kept


def test_collector_paused_nests_and_restores_the_collectors_state():
    from napari_afm_style._qt._jobs import collector_paused

    was = gc.isenabled()
    try:
        gc.enable()
        with collector_paused():
            assert not gc.isenabled()
            with collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the outer pause still holds
        assert gc.isenabled()
        gc.disable()  # someone else switched it off: it stays off
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def _scan_and_atoms(viewer):
    from napari_afm_style._sample_data import SIM_GEOMETRY, SIM_STACK, data_path
    from napari_afm_style._qt._layer_choice import keep_atoms_visible
    from napari_afm_style.io import read_atoms, read_stack

    stack = read_stack(data_path(SIM_STACK))
    d, k, _ = stack_layer_data(stack, name="scan")
    viewer.add_image(d, **k)
    atoms = read_atoms(data_path(SIM_GEOMETRY))
    atoms = atoms[np.array(atoms.get_chemical_symbols()) != "Au"]
    d, k, _ = atoms_layer_data(atoms, name="atoms")
    layer = viewer.add_points(d, **k)
    keep_atoms_visible(viewer)
    return stack, atoms, layer


def test_replace_points_updates_the_viewer_once(make_napari_viewer):
    from napari_afm_style._qt._layer_choice import replace_points

    viewer = make_napari_viewer()
    stack, atoms, layer = _scan_and_atoms(viewer)
    heard, ranges = [], []
    layer.events.data.connect(lambda e: heard.append(e.action))
    viewer.dims.events.range.connect(lambda e: ranges.append(e.value))
    fewer = atoms[: len(atoms) // 2]
    d, k, _ = atoms_layer_data(fewer)
    replace_points(viewer, layer, d, features=k["features"], face_color=k["face_color"], size=k["size"])
    assert len(layer.data) == len(layer.features) == len(layer.size) == len(fewer)
    np.testing.assert_allclose(layer.data, fewer.positions[:, ::-1])
    assert list(layer.features["element"]) == fewer.get_chemical_symbols()
    # every listener of the layer (its drawing, the order plot) hears the change as before
    assert [str(a) for a in heard] == ["changing", "changed"]
    # the viewer recomputed its ranges once (napari's union, then back to the stack's
    # slices), not once per announcement; the height slider is on the stack's slices
    assert len(ranges) <= 2
    assert viewer.dims.nsteps[0] == len(stack.heights_A)
    assert viewer.dims.range[0].start == pytest.approx(stack.heights_A.min())


def test_new_layer_is_added_hidden_and_shown_on_a_later_pass(make_napari_viewer, qtbot):
    from napari_afm_style._qt._layer_choice import add_layer_then_show

    viewer = make_napari_viewer()
    stack, atoms, _ = _scan_and_atoms(viewer)
    shown = []
    layer = add_layer_then_show(viewer, stack_layer_data(stack, name="copy"), on_shown=shown.append)
    assert layer in viewer.layers and not layer.visible and shown == []
    qtbot.waitUntil(lambda: shown == [layer], timeout=5_000)
    assert layer.visible
    # removed before it was shown: nothing breaks, the caller still hears of it
    gone = add_layer_then_show(viewer, atoms_layer_data(atoms, name="gone"), on_shown=shown.append)
    viewer.layers.remove(gone)
    qtbot.waitUntil(lambda: shown == [layer, gone], timeout=5_000)
    assert gone not in viewer.layers


def test_editing_an_atom_reslices_the_viewer_at_most_once(make_napari_viewer, monkeypatch):
    viewer = make_napari_viewer()
    stack, _, layer = _scan_and_atoms(viewer)
    slices = []
    real = viewer._update_layers
    monkeypatch.setattr(viewer, "_update_layers", lambda **kw: (slices.append(1), real(**kw))[1])
    # a lateral move: napari would widen the height axis to the atoms and narrow it back,
    # re-slicing every layer on each of the two announcements of the change (four passes);
    # the position and slice thickness end where they were, so nothing needs re-slicing
    height = viewer.dims.point[0]
    data = np.array(layer.data)
    data[0, 2] += 0.4
    layer.data = data
    assert slices == []
    assert viewer.dims.point[0] == height  # the height slider stays on its slice
    assert viewer.dims.nsteps[0] == len(stack.heights_A)
    np.testing.assert_allclose(layer._view_data[:, -1], data[:, 2])  # drawn where it now is
    # a point added far beyond the scan widens the lateral axes: the viewer re-slices, once
    far = np.vstack([data, data[:1] + [0.0, 0.0, 500.0]])
    layer.data = far
    assert len(slices) <= 1
    assert viewer.dims.range[2].stop >= far[-1, 2] - 1e-6
    assert viewer.dims.nsteps[0] == len(stack.heights_A)
    assert len(layer._view_data) == len(far)  # every atom over every slice
    # removed from the viewer, the layer no longer drives its ranges
    viewer.layers.remove(layer)
    layer.data = data
    assert viewer.dims.range[2].stop < far[-1, 2] - 1.0
