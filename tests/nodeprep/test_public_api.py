"""kubevc.nodeprep's ``__all__`` is exactly its public API (the httpx-style check).

Every listed name exists, every public attribute of the package that is not a submodule is
listed, and each module's own ``__all__`` names only what the module has.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import kubevc.nodeprep as nodeprep


def test_every_listed_name_exists() -> None:
    missing = [name for name in nodeprep.__all__ if not hasattr(nodeprep, name)]
    assert missing == []
    assert len(set(nodeprep.__all__)) == len(nodeprep.__all__)


def test_every_public_attribute_is_listed() -> None:
    public = {
        name
        for name, value in vars(nodeprep).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(nodeprep.__all__)


def test_what_kubevc_gen_imports_is_public() -> None:
    # generator/cli_node.py and generator/modelstore.py, by module (they import from these paths)
    used = {
        "runner": ["RunReport", "Target", "pyinfra_session"],
        "join": [
            "JoinError",
            "JoinRequest",
            "core_api_for_context",
            "join_node",
            "node_preflight",
            "pyinfra_join_runner",
            "stage_k3s_agent",
        ],
        "kubeconfig": ["KubeconfigError", "default_kubeconfig_path", "merge_kubeconfig_file"],
        "platform": ["UnsupportedPlatformError"],
        "prepare": ["PrepareOptions", "prepare_nodes"],
        "cluster": [
            "DEFAULT_K3S_VERSION",
            "DEFAULT_KUBERNETES_VERSION",
            "ClusterParams",
            "init_cluster",
            "k3s_plan",
        ],
        "fluxsync": ["FluxSyncError", "apply_flux_sync"],
    }
    for module, names in used.items():
        loaded = importlib.import_module(f"kubevc.nodeprep.{module}")
        for name in names:
            assert name in nodeprep.__all__, name
            assert getattr(loaded, name) is getattr(nodeprep, name), f"{module}.{name}"


def _modules() -> list[str]:
    found = ["kubevc.nodeprep"]
    for info in pkgutil.walk_packages(nodeprep.__path__, "kubevc.nodeprep."):
        found.append(info.name)
    return found


@pytest.mark.parametrize("name", _modules())
def test_every_module_all_names_what_it_has(name: str) -> None:
    module = importlib.import_module(name)
    listed = getattr(module, "__all__", [])
    assert [n for n in listed if not hasattr(module, n)] == []
