"""The main job, reduced: the whole pipeline on the central 64×64 px of the sample."""

import json

import pytest

from napari_afm_style.predict import list_models


@pytest.mark.skipif("pure" not in list_models(), reason="no shipped structure model")
def test_demo_quick_runs_whole_pipeline(tmp_path):
    from napari_afm_style.demo import run_demo

    summary = run_demo(tmp_path, quick=True)
    assert summary["stack_shape"] == [10, 64, 64]
    for name in ("predicted.xyz", "translated_backward.npz", "resimulated.npz", "pipeline.png",
                 "summary.json"):
        assert (tmp_path / name).is_file(), name
    assert set(summary["timings_s"]) == {"load", "translate_backward", "predict", "resimulate",
                                         "order", "export"}
    assert json.loads((tmp_path / "summary.json").read_text())["sample"] == "experiment_like"
    assert sum(summary["atoms_found"].values()) > 0
    # the re-simulation says how its tip height was chosen (confident atoms / own frame)
    assert "confident" in summary["resim_tip_placement"] or "own height frame" in summary["resim_tip_placement"]
    from PIL import Image

    width, height = Image.open(tmp_path / "pipeline.png").size
    assert width >= 2000 and height >= 450  # five labelled panels, titles and colourbars inside
