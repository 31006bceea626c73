"""The import contract (tests/import_contract.py): floors, no circles, no private names.

core → physics → models → inference → training → app: inference never imports training,
the networks never import their training loops. The second half feeds the checker a
deliberate violation so that a checker that silently passes everything is caught too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import import_contract as ic

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def graph():
    return ic.package_imports(SRC)


def test_every_module_sits_on_a_floor_and_imports_only_downwards(graph):
    assert ic.floor_violations(graph) == []


def test_inference_never_imports_training(graph):
    for module in ("napari_afm_style.predict", "napari_afm_style.translate"):
        reached, todo = set(), [module]
        while todo:  # everything the module can pull in, imports inside functions included
            m = todo.pop()
            for imp in graph.get(m, []):
                if imp.target not in reached:
                    reached.add(imp.target)
                    todo.append(imp.target)
        training = sorted(m for m in reached if ic.FLOORS[ic.floor_of(m)][0] == "training")
        assert training == [], f"{module} reaches {training}"


def test_no_import_circles(graph):
    assert ic.cycles(graph) == []


def test_no_private_names_cross_modules(graph):
    assert ic.private_cross_imports(graph) == []


# -- the checker catches what it should -----------------------------------------------------

def _fake_package(tmp_path, files: dict) -> Path:
    root = tmp_path / "src" / ic.PACKAGE
    for rel, text in {"__init__.py": "", **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path / "src"


def test_checker_fails_on_a_deliberate_violation(tmp_path):
    src = _fake_package(tmp_path, {
        "stack.py": "",
        "training/__init__.py": "",
        "training/dataset.py": "from ..stack import x\n",
        # the violation: inference takes a private name from training, inside a function
        "predict.py": "def f():\n    from .training.dataset import _helper\n",
        "models/__init__.py": "",
        "models/net.py": "from ..predict import f\n",   # models below inference: also a violation
    })
    graph = ic.package_imports(src)
    violations = ic.floor_violations(graph)
    assert any("napari_afm_style.predict:2 (inference) imports napari_afm_style.training.dataset (training)" in v
               for v in violations), violations
    assert any(v.startswith("napari_afm_style.models.net:1 (models)") for v in violations), violations
    assert ic.private_cross_imports(graph) == [
        "napari_afm_style.predict:2 takes _helper from napari_afm_style.training.dataset"]


def test_checker_finds_circles_and_unplaced_modules(tmp_path):
    src = _fake_package(tmp_path, {
        "order.py": "from .compare import a\n",
        "compare.py": "def g():\n    from . import order\n",
        "mystery.py": "",
        "perturb.py": "if __name__ == '__main__':\n    from .training import x\n",  # exempt: script entry
        "simulate/__init__.py": "",
        "simulate/engine.py": "from ...stack import AFMStack\n",  # one dot too many
    })
    graph = ic.package_imports(src)
    assert ic.cycles(graph) == [["napari_afm_style.compare", "napari_afm_style.order"]]
    violations = ic.floor_violations(graph)
    assert violations == ["napari_afm_style.mystery: belongs to no floor (add it to FLOORS)",
                          "napari_afm_style.simulate.engine:1 imports from beyond the top of the package"]


def test_every_internal_import_names_a_module(graph):
    # a moved module leaves relative imports that point nowhere; they fail only when run
    missing = [f"{m}:{i.lineno} {i.target}" for m, imps in sorted(graph.items()) for i in imps
               if i.target not in graph and i.target != ic.ESCAPES]
    assert missing == []
