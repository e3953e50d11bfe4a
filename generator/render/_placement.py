"""Where a model's serving pods run: its accelerator and memory turned into the pod keys the
serving chart takes (``resources``, ``nodeSelector``, ``tolerations``).

:func:`model_placement` is pure: (model spec, region spec) -> those keys, nothing else read.
The serving chart runs one Deployment per serving group (a model, or models sharing a runtime),
so :func:`serving_placement` folds the placements of a group's models into that Deployment's keys.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..spec import ACCELERATOR_LABEL, ACCELERATOR_RESOURCES, ModelSpec, RegionSpec, memory_bytes

__all__ = ["model_placement", "serving_placement"]

# NVIDIA's GPU Operator and most GPU node set-ups taint GPU nodes with this key; kubevc's own
# accelerator taint (if an operator sets one) is kubevc.io/accelerator=<kind>:NoSchedule.
_NVIDIA_TAINT = "nvidia.com/gpu"


def _nvidia_label(region: RegionSpec) -> str | None:
    """The ``kubevc.io/accelerator`` value of the region's NVIDIA GPU nodes when they share one
    (all discrete GPUs: nvidia; all Jetsons: jetson); None when mixed or unknown (the
    ``nvidia.com/gpu`` resource alone then picks a GPU node)."""
    labels = {
        kind
        for node in region.nodes
        if node.inventory is not None
        for kind in node.inventory.kinds
        if kind in ("nvidia", "jetson")
    }
    return labels.pop() if len(labels) == 1 else None


def model_placement(model: ModelSpec, region: RegionSpec) -> dict[str, Any]:
    """``resources``/``nodeSelector``/``tolerations`` for a model's serving pods (keys left out
    when the model needs nothing: a CPU model without a memory floor runs anywhere).

    * an accelerator: a limit of one device (``nvidia.com/gpu``, ``kubevc.io/coral-tpu``,
      ``kubevc.io/hailo``), the node label ``kubevc.io/accelerator`` and a toleration of the
      accelerator's taint;
    * ``minMemory``: requests and limits of that much memory, so the scheduler only picks a node
      with that much allocatable.
    """
    placement: dict[str, Any] = {}
    accelerator = model.accelerator or "cpu"
    resources: dict[str, dict[str, Any]] = {}
    if accelerator in ACCELERATOR_RESOURCES:
        resources["limits"] = {ACCELERATOR_RESOURCES[accelerator]: 1}
        label = _nvidia_label(region) if accelerator == "nvidia" else accelerator
        if label is not None:
            placement["nodeSelector"] = {ACCELERATOR_LABEL: label}
        taint = (
            {"key": _NVIDIA_TAINT, "operator": "Exists", "effect": "NoSchedule"}
            if accelerator == "nvidia"
            else {"key": ACCELERATOR_LABEL, "operator": "Equal", "value": accelerator, "effect": "NoSchedule"}
        )
        placement["tolerations"] = [taint]
    if model.min_memory is not None:
        resources.setdefault("limits", {})["memory"] = model.min_memory
        resources["requests"] = {"memory": model.min_memory}
    if resources:
        placement["resources"] = resources
    return placement


def _larger_memory(a: str | None, b: str) -> str:
    return b if a is None or memory_bytes(b) > memory_bytes(a) else a


def serving_placement(region: RegionSpec, models: Collection[str] | None = None) -> dict[str, Any]:
    """The placement of one serving Deployment: the models it serves (``models``: their names;
    None: every model of the region) folded together: device
    limits added up per resource kind (max 1 each), the largest memory floor, node labels the
    models agree on (a label two models want different values of is left out: no node has both),
    tolerations once each."""
    limits: dict[str, Any] = {}
    memory: str | None = None
    selector: dict[str, str] = {}
    conflicting: set[str] = set()
    tolerations: list[dict[str, Any]] = []
    for model in region.models:
        if models is not None and model.name not in models:
            continue
        placement = model_placement(model, region)
        for key, value in placement.get("resources", {}).get("limits", {}).items():
            if key == "memory":
                memory = _larger_memory(memory, value)
            else:
                limits[key] = max(limits.get(key, 0), value)
        for key, value in placement.get("nodeSelector", {}).items():
            if selector.get(key, value) != value:
                conflicting.add(key)
            selector[key] = value
        for toleration in placement.get("tolerations", []):
            if toleration not in tolerations:
                tolerations.append(toleration)
    result: dict[str, Any] = {}
    if memory is not None:
        limits["memory"] = memory
    if limits:
        result["resources"] = {"limits": limits}
        if memory is not None:
            result["resources"]["requests"] = {"memory": memory}
    selector = {k: v for k, v in selector.items() if k not in conflicting}
    if selector:
        result["nodeSelector"] = selector
    if tolerations:
        result["tolerations"] = tolerations
    return result
