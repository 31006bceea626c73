"""The overwrite rule of every writer that is not a stack/geometry writer (those are in
test_io_*): a writer replaces a file of its own kind — a re-run, a new export — and refuses
any other existing file with FileExistsError, leaving it byte for byte as it was."""

import numpy as np
import pytest
import torch

from napari_afm_style.io._atomic import save_figure
from napari_afm_style.models import weights
from napari_afm_style.models.feature_net import FeatureNet, FeatureNetConfig, save_feature_net
from napari_afm_style.models.predictor import AtomPredictor, PredictorConfig
from napari_afm_style.predict import load_model, save_weights

FOREIGN = b"my thesis, draft 7\n"


def _foreign(path):
    path.write_bytes(FOREIGN)
    return path


def _tiny_predictor():
    cfg = PredictorConfig(base_channels=4, depth=1)
    torch.manual_seed(0)
    return AtomPredictor(cfg), cfg


def test_predictor_weights_replace_their_own_kind_and_refuse_other_files(tmp_path):
    net, cfg = _tiny_predictor()
    path = save_weights(net, cfg, tmp_path / "model.pt", default_threshold=0.3)
    save_weights(net, cfg, path, default_threshold=0.6)  # a new export over the old one
    assert load_model(path).default_threshold == pytest.approx(0.6)
    other = _foreign(tmp_path / "notes.pt")
    with pytest.raises(FileExistsError, match="notes.pt"):
        save_weights(net, cfg, other)
    assert other.read_bytes() == FOREIGN
    # a torch file that is not ours is not replaced either
    torch.save({"state_dict": {}}, tmp_path / "theirs.pt")
    before = (tmp_path / "theirs.pt").read_bytes()
    with pytest.raises(FileExistsError):
        save_weights(net, cfg, tmp_path / "theirs.pt")
    assert (tmp_path / "theirs.pt").read_bytes() == before
    assert weights.is_weights_file(path) and not weights.is_weights_file(other)


def test_translator_export_refuses_a_foreign_file(tmp_path):
    from test_translate import _tiny_checkpoint

    from napari_afm_style.train_translator import export_translator

    ck = _tiny_checkpoint(tmp_path)
    path = export_translator(ck, tmp_path / "translator.pt")
    export_translator(ck, path)  # replacing its own export is fine
    other = _foreign(tmp_path / "other.pt")
    with pytest.raises(FileExistsError):
        export_translator(ck, other)
    assert other.read_bytes() == FOREIGN


def test_feature_net_save_refuses_a_foreign_file(tmp_path):
    net = FeatureNet(FeatureNetConfig(widths=(8, 8, 8, 8), n_features=8))
    net.info = {}
    path = save_feature_net(net, tmp_path / "fn.pt")
    save_feature_net(net, path)
    other = _foreign(tmp_path / "data.pt")
    with pytest.raises(FileExistsError):
        save_feature_net(net, other)
    assert other.read_bytes() == FOREIGN


def test_figures_replace_figures_of_their_format_only(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    png = save_figure(fig, tmp_path / "plot.png", dpi=50)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    save_figure(fig, png, dpi=60)  # "Save figure…" again
    pdf = save_figure(fig, tmp_path / "plot.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(FileExistsError):
        save_figure(fig, _foreign(tmp_path / "fig.png"))
    assert (tmp_path / "fig.png").read_bytes() == FOREIGN
    with pytest.raises(FileExistsError):  # a PDF named .png is not replaced by a PNG either
        save_figure(fig, pdf.rename(tmp_path / "wrong.png"))
    with pytest.raises(ValueError, match="figure file name"):
        save_figure(fig, tmp_path / "plot.xyz")


def test_demo_reruns_over_its_outputs_and_refuses_foreign_files_before_any_work(tmp_path, monkeypatch):
    from napari_afm_style import demo

    out = tmp_path / "demo"
    demo.run_demo(out, quick=True)
    first = (out / "summary.json").read_text()
    demo.run_demo(out, quick=True)  # the same command again replaces its own outputs
    assert (out / "summary.json").read_text().count("atoms_found") == 1 and first
    _foreign(out / "pipeline.png")
    ran = []
    monkeypatch.setattr("napari_afm_style.translate.translate", lambda *a, **k: ran.append(1))
    with pytest.raises(FileExistsError, match="pipeline.png"):
        demo.run_demo(out, quick=True)
    assert not ran and (out / "pipeline.png").read_bytes() == FOREIGN
    assert np.isfinite(float(__import__("json").loads((out / "summary.json").read_text())["total_s"]))
