"""The API and the CLI run without the GUI extra: with napari, Qt, magicgui and Dask made
unimportable, `afm-style predict` still predicts the bundled sample (what a headless
cluster worker installing `pip install napari-afm-style` without extras gets)."""

import subprocess
import sys

BLOCKED = ("napari", "qtpy", "PyQt6", "PyQt5", "PySide6", "PySide2", "magicgui", "superqt", "dask", "npe2")

CODE = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
from napari_afm_style.cli import main
from napari_afm_style._sample_data import EXP_STACK, data_path
code = main(['predict', str(data_path(EXP_STACK)), '-o', sys.argv[1]])
print('exit', code)
"""


def test_predict_runs_without_gui_packages(tmp_path):
    out = tmp_path / "atoms.xyz"
    r = subprocess.run([sys.executable, "-c", CODE, str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "exit 0" in r.stdout
    lines = out.read_text().splitlines()
    assert int(lines[0]) > 10 and sum(1 for ln in lines[2:] if ln.split()[0] == "O") > 5
