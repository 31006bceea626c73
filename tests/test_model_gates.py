"""Every shipped model and the translator must reach their floors on the bundled labelled
material, every shipped file must be there and match its card, and deliberately broken
copies must fail these gates (so the gates can fail)."""

import hashlib

import pytest
import torch

import model_gates as gates
from napari_afm_style.predict import _models_dir

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def material():
    return gates.samples()


@pytest.mark.parametrize("name", sorted(gates.FLOORS))
def test_shipped_predictor_reaches_its_floors(name, material):
    assert gates.failures(name, name, material) == []


def test_every_shipped_file_is_there_and_matches_its_card():
    for f in gates.SHIPPED:
        path = _models_dir() / f
        assert path.is_file(), f"{f} is missing from the package"
        card = path.with_suffix(".md").read_text()
        sha = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        assert sha in card, f"{f}: sha256 {sha}… is not the one its card states"


def test_shipped_translator_moves_each_direction_towards_its_domain():
    assert gates.translator_failures() == []


def _edited_copy(tmp_path, name, edit):
    blob = torch.load(_models_dir() / f"predictor_{name}.pt", map_location="cpu", weights_only=True)
    edit(blob)
    path = tmp_path / f"broken_{name}.pt"
    torch.save(blob, path)
    return path


def test_broken_copies_fail_the_gates(tmp_path, material):
    from napari_afm_style.models.predictor import AtomPredictor, PredictorConfig
    from napari_afm_style.translate import Translator, load_translator

    def low_threshold(blob):
        blob["default_threshold"] = 0.02
        blob.setdefault("inference", {})["thresholds_by_views"] = {
            k: 0.02 for k in (blob.get("inference") or {}).get("thresholds_by_views", {1: 0})}

    def reinitialised(blob):
        torch.manual_seed(0)
        fresh = AtomPredictor(PredictorConfig.from_dict(blob["model_config"])).state_dict()
        blob["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in fresh.items()}

    for edit in (low_threshold, reinitialised):
        assert gates.failures(_edited_copy(tmp_path, "hybrid", edit), "hybrid", material), edit.__name__
    tr = load_translator()
    swapped = Translator(tr.backward_gen, tr.forward_gen, "generators swapped")
    assert gates.translator_failures(swapped)
    # a shipped file deleted (here: looked up under a name that is not shipped) is caught
    assert not (_models_dir() / "predictor_nonexistent.pt").is_file()
    gone = tmp_path / "gone.pt"
    with pytest.raises(FileNotFoundError):
        gates.failures(gone, "pure", material)
