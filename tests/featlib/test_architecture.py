"""The package map of docs/ARCHITECTURE.md holds: no import cycle between featlib's modules (imports
inside functions count), each package imports only the packages below it, and nothing in featlib
imports streamlit or the app's ``ui`` package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "featlib"

# What each package may import besides itself, the private modules (featlib/_*.py) and errors.
ALLOWED = {
    "images": set(),
    "models": set(),
    "analysis": set(),
    "render": set(),
    "extraction": {"images", "models"},
    "teaching": {"analysis", "extraction", "models"},
    "engine": {"extraction", "images", "models"},
    "cli": {"analysis", "engine", "extraction", "images", "models", "render", "teaching"},
}
BASE = {"errors", "featlib"}  # featlib: the root package, whose names load lazily


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of the imports under ``if TYPE_CHECKING:`` (never run)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(range(inner.lineno, inner.end_lineno + 1))
    return lines


def imports_of(module: str) -> set[str]:
    """Every module ``module`` imports, at the top or inside a function."""
    tree = ast.parse(MODULES[module].read_text())
    skip = _type_checking_only(tree)
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


GRAPH = {m: {i for i in imports_of(m) if i in MODULES and i != m} for m in MODULES}


def _package(module: str) -> str:
    parts = module.split(".")
    return "featlib" if len(parts) == 1 else parts[1].removesuffix(".py")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_imports_inside_functions():
    assert "featlib.extraction.extractor" in imports_of("featlib.extraction.tuning")
    assert "featlib.models.backbones" in imports_of("featlib.cli.commands")


def test_no_import_cycle_between_featlib_modules():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_featlib_never_imports_streamlit_or_the_app(module):
    tops = {name.split(".")[0] for name in imports_of(module)}
    assert not tops & {"streamlit", "ui", "app_pages"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _package(m) in ALLOWED))
def test_each_package_imports_only_the_packages_below_it(module):
    package = _package(module)
    imported = {_package(m) for m in GRAPH[module]} - {package}
    private = {p for p in imported if p.startswith("_")}
    assert imported - private - BASE <= ALLOWED[package], sorted(imported)


def test_every_package_is_in_the_map():
    packages = {_package(m) for m in MODULES if (ROOT / _package(m)).is_dir()}
    assert packages == set(ALLOWED)
