"""What a hardened pod looks like in kubevc (checked on every rendered workload)."""

from __future__ import annotations

from typing import Any

from tests.charts.rendering import Manifest, containers

# Jobs run to completion: Kubernetes probes make little sense there.
KINDS_WITHOUT_PROBES = {"Job", "CronJob"}


def pod_problems(pod_spec: Manifest) -> list[str]:
    problems: list[str] = []
    if pod_spec.get("automountServiceAccountToken") is not False:
        problems.append("pod: automountServiceAccountToken is not false")
    pod_sc: dict[str, Any] = pod_spec.get("securityContext") or {}
    if pod_sc.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot is not true")
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if not isinstance(pod_sc.get(key), int) or pod_sc[key] <= 0:
            problems.append(f"pod: {key} is not a non-zero integer")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile is not RuntimeDefault")
    return problems


def container_problems(container: Manifest, pod_spec: Manifest, needs_probes: bool) -> list[str]:
    name = container.get("name", "?")
    problems: list[str] = []
    sc: dict[str, Any] = container.get("securityContext") or {}
    expected = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    problems += [
        f"{name}: {key} is not {value}" for key, value in expected.items() if sc.get(key) is not value
    ]
    if sc.get("privileged") is True:
        problems.append(f"{name}: privileged")
    if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
        problems.append(f"{name}: capabilities do not drop ALL")
    if sc.get("capabilities", {}).get("add"):
        problems.append(f"{name}: capabilities are added")
    if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    if isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] <= 0:
        problems.append(f"{name}: runAsUser is root")
    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if not (resources.get(section) or {}).get(resource):
                problems.append(f"{name}: resources.{section}.{resource} missing")
    image = str(container.get("image", ""))
    tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
    if not tag or tag == "latest":
        problems.append(f"{name}: image {image!r} has no pinned tag")
    if needs_probes:
        problems += [
            f"{name}: {probe} missing"
            for probe in ("livenessProbe", "readinessProbe")
            if probe not in container
        ]
    # A read-only root needs a writable /tmp, and it must be an emptyDir (not the node's disk).
    empty_dirs = {v["name"] for v in pod_spec.get("volumes", []) if "emptyDir" in v}
    tmp_mounts = [m for m in container.get("volumeMounts", []) if m.get("mountPath") == "/tmp"]
    if not tmp_mounts or tmp_mounts[0]["name"] not in empty_dirs:
        problems.append(f"{name}: /tmp is not an emptyDir mount")
    return problems


def is_helm_test(obj: Manifest) -> bool:
    """A ``helm test`` hook: a Pod that runs one check to completion, like a Job."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return "test" in str(annotations.get("helm.sh/hook", "")).split(",")


def workload_problems(kind: str, pod_spec: Manifest, *, runs_to_completion: bool = False) -> list[str]:
    needs_probes = kind not in KINDS_WITHOUT_PROBES and not runs_to_completion
    problems = pod_problems(pod_spec)
    for container in containers(pod_spec):
        problems += container_problems(container, pod_spec, needs_probes)
    return problems
