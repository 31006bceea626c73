"""The main job, reduced: the whole pipeline on the central 64×64 px of the sample."""

import json

import pytest

from napari_afm_style.predict import list_models


@pytest.mark.skipif("pure" not in list_models(), reason="no shipped structure model")
def test_demo_quick_runs_whole_pipeline(tmp_path):
    from napari_afm_style.demo import run_demo

    summary = run_demo(tmp_path, quick=True)
    assert summary["stack_shape"] == [10, 64, 64]
    # the default path predicts on the raw scan: nothing translated, no copy of the scan written
    assert summary["translation_strength"] == 0.0
    for name in ("predicted.xyz", "resimulated.npz", "pipeline.png", "summary.json"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "translated_backward.npz").exists()
    assert set(summary["timings_s"]) == {"load", "predict", "resimulate", "order", "export"}
    assert json.loads((tmp_path / "summary.json").read_text())["sample"] == "experiment_like"
    assert sum(summary["atoms_found"].values()) > 0
    # the re-simulation says how its tip height was chosen (confident atoms / own frame)
    assert "confident" in summary["resim_tip_placement"] or "own height frame" in summary["resim_tip_placement"]
    from PIL import Image

    width, height = Image.open(tmp_path / "pipeline.png").size
    assert width >= 2000 and height >= 450  # five labelled panels, titles and colourbars inside


@pytest.mark.skipif("pure" not in list_models(), reason="no shipped structure model")
def test_demo_translated_path_writes_the_translated_scan(tmp_path):
    from napari_afm_style.demo import run_demo
    from napari_afm_style.io import read_stack

    summary = run_demo(tmp_path, quick=True, model="handcrafted", strength=1.0)
    assert summary["translation_strength"] == 1.0 and "translate_backward" in summary["timings_s"]
    translated = read_stack(tmp_path / "translated_backward.npz")
    assert translated.shape == (10, 64, 64) and translated.metadata["translation"]["strength"] == 1.0
    # the raw path run again into the same folder leaves no translated scan of the last run
    again = run_demo(tmp_path, quick=True, model="handcrafted", strength=0.0)
    assert "translated_backward.npz" not in again["outputs"]
