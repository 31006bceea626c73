"""The examples in the API's docstrings run and print what they show."""

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import napari_afm_style

PACKAGE_DIR = Path(napari_afm_style.__file__).parent


def _modules_with_examples():
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="napari_afm_style."):
        if "._qt" in info.name:  # widgets: exercised by the napari tests
            continue
        rel = info.name.split(".", 1)[1].replace(".", "/")
        path = PACKAGE_DIR / (rel + ".py")
        if not path.is_file():
            path = PACKAGE_DIR / rel / "__init__.py"
        if path.is_file() and ">>> " in path.read_text(encoding="utf-8"):
            names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_examples_were_found():
    assert {"napari_afm_style.stack", "napari_afm_style.order", "napari_afm_style._plain"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run python -m doctest -v)"
