"""Each generator package's ``__all__`` is exactly its public API (httpx's rule).

Every public name a package defines or re-exports is listed, and nothing else; the private
modules (``_x.py``) behind it are not part of it. A public submodule (``spec.flux``) is listed
when the package offers it; other submodules showing up as attributes (because something imported
them) are the package's structure, not re-exports.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = (
    "kubevc.generator",
    "kubevc.generator.errors",
    "kubevc.generator.spec",
    "kubevc.generator.repo",
    "kubevc.generator.render",
    "kubevc.generator.validate",
    "kubevc.generator.live",
    "kubevc.generator.models",
    "kubevc.generator.workflows",
    "kubevc.generator.cli",
)


def _public(module: ModuleType) -> set[str]:
    listed = set(module.__all__)
    names: set[str] = set()
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        is_own_submodule = isinstance(value, ModuleType) and value.__name__ == f"{module.__name__}.{name}"
        if is_own_submodule and name not in listed:
            continue
        if name == "annotations" and getattr(value, "compiler_flag", None):  # `from __future__ import`
            continue
        names.add(name)
    return names


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_public_api(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__)), "duplicates in __all__"
    assert set(module.__all__) == _public(module)
    for listed in module.__all__:
        assert hasattr(module, listed), f"{name}.__all__ lists {listed!r}, which it does not define"


def test_one_deep_merge() -> None:
    """The Helm-style values merge is spec's; validate used to carry (and export) a copy of it."""
    spec = importlib.import_module("kubevc.generator.spec")
    validate = importlib.import_module("kubevc.generator.validate")
    assert "deep_merge" in spec.__all__
    assert "deep_merge" not in validate.__all__ and not hasattr(validate, "deep_merge")
