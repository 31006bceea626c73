"""A window closed while a dock's worker still runs (a model loading, a prediction) ends
the process cleanly: the exit waits for the worker instead of aborting under it."""

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.parametrize("close_viewer", [True, False])
def test_exit_while_the_model_loads_and_a_prediction_runs_is_clean(close_viewer):
    code = textwrap.dedent(f"""
        import napari
        from napari_afm_style.demo import build_gui
        from napari_afm_style._qt._background import _RUNNING
        viewer = napari.Viewer(show=False)
        viewer.open_sample("napari-afm-style", "water_experiment_like")
        docks = build_gui(viewer, sample=None)
        docks["predict"].run()  # pressed while torch is still loading in the background
        print("running workers", len(_RUNNING))
        if {close_viewer}:
            viewer.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "has been deleted" not in out.stderr
    # the warm-ups of the Predict and Translate docks and the prediction were still running
    assert int(out.stdout.split("running workers")[1].split()[0]) >= 2
