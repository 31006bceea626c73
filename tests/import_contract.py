"""The import contract of napari_afm_style: floors, no circles, no private names across modules.

Floors, lowest first; a module may import from its own floor and the floors below it:

    core → physics → models → inference → training → app

The checker reads the source with :mod:`ast` (nothing is imported), so imports inside
functions count as much as those at the top of a module. Imports under
``if __name__ == "__main__":`` (a script's entry, never run on import) and under
``if TYPE_CHECKING:`` are not part of the contract.

Used by tests/test_import_contract.py; run it on its own to print the graph's state::

    python tests/import_contract.py [SRC_DIR]
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "napari_afm_style"

#: floor name → module names (a name stands for itself and everything under it)
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("napari_afm_style", "stack", "resample", "_plain", "_device", "_mmd", "io")),
    ("physics", ("simulate", "structures", "perturb", "completion", "order", "compare", "resimulation")),
    ("models", ("models",)),
    ("inference", ("predict", "translate")),
    ("training", ("training",
                  # the old flat paths of the training modules, kept as aliases
                  "dataset", "generate", "train_predictor", "train_translator", "evaluation",
                  "experiment", "metrics", "labelled_scans", "translation_criteria")),
    ("app", ("cli", "_qt", "_reader", "_writer", "_sample_data", "_layers", "demo")),
]


#: the target recorded for a relative import that climbs out of the package
ESCAPES = "<beyond the package>"


@dataclass(frozen=True)
class Import:
    source: str     # importing module (dotted, with the package)
    target: str     # imported module
    names: tuple    # names taken from it (empty for ``import x``)
    lineno: int


def _is_exempt_guard(node: ast.If) -> bool:
    t = node.test
    if isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__":
        return True
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _walk(node):
    """ast.walk, minus the bodies of exempt ``if`` guards."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_exempt_guard(child):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of_source(text: str, module: str, is_package: bool, modules: set[str]) -> list[Import]:
    """Package-internal imports of one module's source."""
    out = []
    package = module if is_package else module.rpartition(".")[0]
    for node in _walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == PACKAGE or a.name.startswith(PACKAGE + "."):
                    out.append(Import(module, a.name, (), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level - 1 >= len(base):  # ``from ...x`` beyond the top of the package
                    out.append(Import(module, ESCAPES, tuple(a.name for a in node.names), node.lineno))
                    continue
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                continue
            plain_names = []
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in modules:  # ``from . import metrics``: the submodule is the target
                    out.append(Import(module, sub, (), node.lineno))
                else:
                    plain_names.append(a.name)
            if plain_names or not node.names:
                out.append(Import(module, target, tuple(plain_names), node.lineno))
    return out


def package_imports(src) -> dict[str, list[Import]]:
    """module → its package-internal imports, for the package under ``src``."""
    src = Path(src)
    files = sorted((src / PACKAGE).rglob("*.py"))
    modules = {module_name(p, src): p for p in files}
    return {m: imports_of_source(p.read_text(encoding="utf-8"), m, p.name == "__init__.py", set(modules))
            for m, p in modules.items()}


def floor_of(module: str) -> int | None:
    """Index of the floor of ``module`` in :data:`FLOORS` (the longest matching name wins)."""
    rel = module[len(PACKAGE) + 1:] if module.startswith(PACKAGE + ".") else ("napari_afm_style" if module == PACKAGE else module)
    best, best_len = None, -1
    for i, (_, names) in enumerate(FLOORS):
        for n in names:
            if (rel == n or rel.startswith(n + ".")) and len(n) > best_len:
                best, best_len = i, len(n)
    return best


def floor_violations(graph: dict[str, list[Import]]) -> list[str]:
    """Imports that go up a floor, and modules that belong to no floor."""
    out = []
    for module, imports in sorted(graph.items()):
        mine = floor_of(module)
        if mine is None:
            out.append(f"{module}: belongs to no floor (add it to FLOORS)")
            continue
        for imp in imports:
            if imp.target == ESCAPES:
                out.append(f"{module}:{imp.lineno} imports from beyond the top of the package")
                continue
            theirs = floor_of(imp.target)
            if theirs is not None and theirs > mine:
                out.append(f"{module}:{imp.lineno} ({FLOORS[mine][0]}) imports {imp.target} ({FLOORS[theirs][0]})")
    return out


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (import circles), sorted."""
    edges = {m: sorted({i.target for i in imps if i.target in graph and i.target != m}) for m, imps in graph.items()}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def private_cross_imports(graph: dict[str, list[Import]]) -> list[str]:
    """Imports of ``_private`` names from another module (dunders excepted)."""
    return [f"{m}:{i.lineno} takes {n} from {i.target}"
            for m, imps in sorted(graph.items()) for i in imps for n in i.names
            if n.startswith("_") and not n.startswith("__") and i.target != m]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    src = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "src"
    graph = package_imports(src)
    for title, items in (("floor violations", floor_violations(graph)),
                         ("circles", [" ⇄ ".join(c) for c in cycles(graph)]),
                         ("private names across modules", private_cross_imports(graph))):
        print(f"{title}: {len(items)}")
        for item in items:
            print(f"  {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
