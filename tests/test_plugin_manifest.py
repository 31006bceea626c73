"""The manifest is found by npe2/napari in this install and ships inside the wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_npe2_validate():
    out = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari_afm_style"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_manifest_contributions_listed():
    from npe2 import PluginManager

    pm = PluginManager()
    pm.discover()
    manifest = pm.get_manifest("napari-afm-style")
    contrib = manifest.contributions
    assert {r.command for r in contrib.readers} == {"napari-afm-style.get_reader"}
    assert {w.command for w in contrib.writers} >= {"napari-afm-style.write_points_xyz"}
    assert {s.key for s in contrib.sample_data} >= {"water_sim", "water_experiment_like"}
    assert len(contrib.widgets or []) >= 1


def test_package_manifest_is_the_top_level_one():
    packaged = ROOT / "src" / "napari_afm_style" / "napari.yaml"
    assert packaged.read_text() == (ROOT / "napari.yaml").read_text()


@pytest.mark.slow
def test_wheel_contains_manifest_and_entry_point(tmp_path):
    import hashlib
    import shutil

    # build from a copy, so that nothing (build/, *.egg-info) is written into the source tree
    src = tmp_path / "source"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info",
                                                              "__pycache__", ".pytest_cache", ".whl", "demo_output"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("napari_afm_style-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "napari_afm_style/napari.yaml" in names
        manifest = z.read("napari_afm_style/napari.yaml").decode()
        assert manifest == (ROOT / "napari.yaml").read_text()
        ep = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[napari.manifest]" in ep and "napari_afm_style:napari.yaml" in ep
    assert "afm-style = napari_afm_style.cli:main" in ep
    assert any(n.startswith("napari_afm_style/data/sample_") for n in names)
    # every shipped weights file and its card, byte for byte
    models = ROOT / "src" / "napari_afm_style" / "models"
    shipped = sorted(p.name for p in models.iterdir() if p.suffix in (".pt", ".md"))
    assert len([n for n in shipped if n.endswith(".pt")]) >= 6
    with zipfile.ZipFile(wheel) as z:
        for name in shipped:
            data = z.read(f"napari_afm_style/models/{name}")
            assert hashlib.sha256(data).digest() == hashlib.sha256((models / name).read_bytes()).digest(), name
