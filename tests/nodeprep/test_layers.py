"""kubevc.nodeprep's layers import only downward, and the pure layer imports no I/O.

The same rules as the import-linter contract proposed for pyproject.toml, read from the source
with ``ast`` so they hold without import-linter installed: a module may import nodeprep modules
of lower layers only (not of its own layer, except within ``plans``), no nodeprep import sits
inside a function, and only ``kubeapi`` imports the kubernetes client inside functions (it takes
about a second to import; see its docstring).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kubevc.nodeprep as nodeprep

ROOT = Path(nodeprep.__file__).parent

# top to bottom; names are the first component under kubevc.nodeprep
LAYERS: list[set[str]] = [
    {"testing"},
    {"prepare", "cluster", "join", "fluxsync"},
    {"runner", "kubeapi", "kubeconfig"},
    {"operations"},
    {"facts"},
    {"plans", "platform", "texts"},
    {"errors"},
]
PURE = {"plans", "platform", "texts", "errors"}
IO_MODULES = {"pyinfra", "kubernetes", "requests", "httpx", "urllib3", "http", "socket", "subprocess"}


def _layer(part: str) -> int:
    return next(index for index, names in enumerate(LAYERS) if part in names)


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT)


def _part(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module name, inside a function) for every import of the module."""
    package = ".".join(("kubevc.nodeprep", *path.relative_to(ROOT).parent.parts))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package.split(".")
                if child.level:
                    base = base[: len(base) - child.level + 1]
                    name = ".".join([*base, child.module] if child.module else base)
                else:
                    name = child.module or ""
                found.append((name, in_function))
                if child.module is None:  # `from . import x`: x is a module
                    found.extend((f"{name}.{alias.name}", in_function) for alias in child.names)
            visit(child, nested)

    visit(ast.parse(path.read_text()), False)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    part = _part(path)
    for name, in_function in _imports(path):
        if not name.startswith("kubevc.nodeprep."):
            continue
        target = name.split(".")[2]
        assert not in_function, f"{name} imported inside a function"
        if target == part == "plans":
            continue
        assert _layer(target) > _layer(part), f"{part} imports {target} (same or higher layer)"


@pytest.mark.parametrize("path", [p for p in _modules() if _part(p) in PURE], ids=lambda p: p.name)
def test_pure_layer_imports_no_io(path: Path) -> None:
    io = [name for name, _ in _imports(path) if name.split(".")[0] in IO_MODULES]
    assert io == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_kubeapi_imports_lazily(path: Path) -> None:
    lazy = {name.split(".")[0] for name, in_function in _imports(path) if in_function}
    assert lazy <= ({"kubernetes"} if path.name == "kubeapi.py" else set())
