"""Each gateway package's ``__all__`` is exactly its public API: every public attribute that is not
a module is listed, and everything listed exists."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = ["kubevc.gateway", "kubevc.gateway.testing"]


def _public(module: types.ModuleType) -> set[str]:
    return {
        name
        for name in dir(module)
        if not name.startswith("_") and not isinstance(getattr(module, name), types.ModuleType)
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_exactly_the_public_api(package: str) -> None:
    module = importlib.import_module(package)
    listed = list(module.__all__)
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert sorted(listed) == listed, "keep __all__ sorted"
    missing = [name for name in listed if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ lists names that do not exist: {missing}"
    assert _public(module) == set(listed)


def test_every_gateway_error_has_one_base() -> None:
    gateway = importlib.import_module("kubevc.gateway")
    errors = [
        getattr(gateway, name)
        for name in gateway.__all__
        if isinstance(getattr(gateway, name), type) and issubclass(getattr(gateway, name), BaseException)
    ]
    assert {e.__name__ for e in errors} >= {"GatewayError", "BackendError", "ConfigError", "WireError"}
    assert all(issubclass(e, gateway.KubevcGatewayError) for e in errors)
    # the two that were ValueErrors stay ValueErrors: callers caught them as such
    assert issubclass(gateway.ConfigError, ValueError) and issubclass(gateway.WireError, ValueError)


def test_every_exception_class_of_the_gateway_is_under_the_base() -> None:
    import pkgutil

    gateway = importlib.import_module("kubevc.gateway")
    found = []
    for info in pkgutil.iter_modules(gateway.__path__, "kubevc.gateway."):
        # _proto is generated code; testing's exceptions are the test server's control flow
        if info.name.endswith(("._proto", ".testing", "._protogen")):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == info.name:
                found.append(value)
    assert len(found) >= 10, found
    assert [e for e in found if not issubclass(e, gateway.KubevcGatewayError)] == []
