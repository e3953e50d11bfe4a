"""Accelerators as the fleet sees them: what a node offers (its recorded ``inventory``), the
device-plugin resource and node label each accelerator goes by, and which models of a region no
node can take. Pure: the render's placement and ``validate`` both read it."""

from __future__ import annotations

from ._region import ModelSpec, NodeSpec, RegionSpec, memory_bytes

__all__ = [
    "ACCELERATOR_LABEL",
    "ACCELERATOR_RESOURCES",
    "CORAL_USB_IDS",
    "DEVICE_PLUGIN_KINDS",
    "accelerator_problems",
    "node_offers",
    "region_accelerator_kinds",
]

# the node label `node join` sets (kubevc.nodeprep.plans.inventory.ACCELERATOR_LABEL)
ACCELERATOR_LABEL = "kubevc.io/accelerator"
# model accelerator -> the extended resource a pod asks for (NVIDIA's device plugin for GPUs,
# kubevc's generic device plugin for /dev/apex_* and /dev/hailo*)
ACCELERATOR_RESOURCES = {
    "nvidia": "nvidia.com/gpu",
    "coral": "kubevc.io/coral-tpu",
    "hailo": "kubevc.io/hailo",
}
# node accelerator kinds served by the generic device plugin
DEVICE_PLUGIN_KINDS = ("coral", "hailo")
CORAL_USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))
# which node accelerator kinds offer a model accelerator: NVIDIA's device plugin serves both a
# discrete GPU and a Jetson's integrated one as nvidia.com/gpu
_OFFERED_BY = {"nvidia": ("nvidia", "jetson"), "coral": ("coral",), "hailo": ("hailo",)}


def node_offers(node: NodeSpec, accelerator: str) -> bool:
    """Whether the node's recorded inventory has what a model of ``accelerator`` needs."""
    if accelerator == "cpu":
        return True
    if node.inventory is None:
        return False
    return any(kind in _OFFERED_BY.get(accelerator, ()) for kind in node.inventory.kinds)


def region_accelerator_kinds(region: RegionSpec) -> set[str]:
    """Every accelerator kind some node of the region has (from the recorded inventories)."""
    return {kind for node in region.nodes if node.inventory for kind in node.inventory.kinds}


def _fits(node: NodeSpec, model: ModelSpec) -> bool:
    if not node_offers(node, model.accelerator or "cpu"):
        return False
    if model.min_memory is None:
        return True
    memory = node.inventory.memory_mib if node.inventory else None
    return memory is not None and memory * 1024**2 >= memory_bytes(model.min_memory)


def accelerator_problems(region: RegionSpec) -> list[str]:
    """One line per model no node of the region can take (its accelerator, its memory, or both)."""
    problems = []
    for model in region.models:
        if (model.accelerator in (None, "cpu") and model.min_memory is None) or any(
            _fits(node, model) for node in region.nodes
        ):
            continue
        wants = []
        if model.accelerator not in (None, "cpu"):
            wants.append(f"accelerator {model.accelerator}")
        if model.min_memory is not None:
            wants.append(f"{model.min_memory} of memory")
        known = [n for n in region.nodes if n.inventory is not None]
        offered = ", ".join(
            f"{n.host}: {'+'.join(n.inventory.kinds) or 'cpu'}"
            f"{f' {n.inventory.memory_mib}Mi' if n.inventory.memory_mib else ''}"
            for n in known
            if n.inventory is not None
        )
        have = (
            f"nodes offer {offered}"
            if known
            else "no node has a recorded inventory (kubevc-gen node prepare)"
        )
        problems.append(
            f"model {model.name} needs a node with {' and '.join(wants)}; no node of region {region.name} "
            f"offers that ({have})"
        )
    return problems
