"""`afm-style gui` as typed: napari opens with the four docks on the bundled sample (the
event loop itself, napari.run, is replaced by a check of what the window holds)."""

import napari
import pytest


@pytest.mark.parametrize("sample, layer", [("experiment_like", "Δf"), ("simulated", "Δf")])
def test_gui_command_opens_the_sample_with_every_dock(monkeypatch, qtbot, sample, layer):
    from napari_afm_style.cli import main

    seen = {}

    def fake_run(*args, **kwargs):
        viewer = napari.current_viewer()
        seen["layers"] = [ly.name for ly in viewer.layers]
        seen["docks"] = sorted(viewer.window._dock_widgets)
        seen["title"] = viewer.title
        viewer.close()

    monkeypatch.setattr(napari, "run", fake_run)
    assert main(["gui", "--sample", sample]) == 0
    assert seen["title"] == "napari-afm-style"
    assert any(layer in name for name in seen["layers"]), seen["layers"]
    for dock in ("Style translation", "Predict atoms", "Re-simulate structure", "Tetrahedral order"):
        assert any(dock in d for d in seen["docks"]), seen["docks"]
