"""``infrastructure/accelerators/<region>/``: the device plugins a region's nodes need, rendered
only where its recorded inventory (``nodes[].inventory``, written by ``node prepare``) has them.

* NVIDIA GPUs (discrete or Jetson): NVIDIA's own device plugin chart, from NVIDIA's public chart
  repository (a Flux HelmRepository + HelmRelease; Flux fetches the chart in the cluster), placed
  on the nodes labelled ``kubevc.io/accelerator=nvidia|jetson``; it advertises ``nvidia.com/gpu``.
* Coral Edge TPUs (``/dev/apex_*``, USB ids 1a6e:089a / 18d1:9302) and Hailo (``/dev/hailo*``):
  kubevc's own DaemonSet of the generic device plugin, advertising ``kubevc.io/coral-tpu`` and
  ``kubevc.io/hailo``.

The generic plugin must run as root: it creates its socket in the kubelet's root-owned
``/var/lib/kubelet/device-plugins`` (0755). Everything else is taken away (no privilege, no
capability, read-only root file system, /dev and /sys read-only, no API token, bounded
resources); checkov's two root checks are skipped on this one object, with the reason, through
checkov's own annotations.
"""

from __future__ import annotations

import json
from typing import Any

from ..spec import ACCELERATOR_LABEL, CORAL_USB_IDS, RegionSpec, region_accelerator_kinds
from ._common import generated, generated_docs, kustomization, namespace, remote_chart_release

__all__ = [
    "DEVICE_PLUGIN_IMAGE",
    "DEVICE_PLUGIN_NS",
    "NVIDIA_DEVICE_PLUGIN_REPO",
    "NVIDIA_DEVICE_PLUGIN_VERSION",
    "accelerators_folder",
    "region_accelerator_files",
]

DEVICE_PLUGIN_NS = "kubevc-device-plugins"
NVIDIA_DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
NVIDIA_DEVICE_PLUGIN_VERSION = "0.17.0"
# the generic device plugin (github.com/squat/generic-device-plugin), pinned by digest
DEVICE_PLUGIN_IMAGE = (
    "ghcr.io/squat/generic-device-plugin:0.2.0"
    "@sha256:66c8d5c270eb2b721f1064c549b9b7898152a6d2f0163380a5d37dc7636c20ff"
)
_GENERIC_NAME = "kubevc-device-plugin"
_RESOURCE_DOMAIN = "kubevc.io"
# resource name (under kubevc.io/) -> the device groups of the generic plugin: each /dev match or
# USB device is one schedulable device
_GENERIC_DEVICES: dict[str, dict[str, Any]] = {
    "coral": {
        "name": "coral-tpu",
        "groups": [
            {"paths": [{"path": "/dev/apex_*"}]},
            *({"usb": [{"vendor": vendor, "product": product}]} for vendor, product in CORAL_USB_IDS),
        ],
    },
    "hailo": {"name": "hailo", "groups": [{"paths": [{"path": "/dev/hailo*"}]}]},
}
_CHECKOV_SKIPS = {
    "checkov.io/skip1": "CKV_K8S_23=the device plugin's socket goes into the kubelet's root-owned folder",
    "checkov.io/skip2": "CKV_K8S_40=root (UID 0) for the same reason; no capability, no privilege",
}


def accelerators_folder(region: RegionSpec) -> str | None:
    """``infrastructure/accelerators/<r>`` when some node of the region needs a device plugin."""
    kinds = region_accelerator_kinds(region)
    if kinds & {"nvidia", "jetson", "coral", "hailo"}:
        return f"infrastructure/accelerators/{region.name}"
    return None


def _nvidia_docs(gpu_labels: list[str]) -> list[dict[str, Any]]:
    values = {
        # on the GPU nodes node join labelled (no Node Feature Discovery needed)
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": ACCELERATOR_LABEL, "operator": "In", "values": gpu_labels}
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": ACCELERATOR_LABEL, "operator": "Exists", "effect": "NoSchedule"},
        ],
    }
    return remote_chart_release(
        repository="nvidia",
        url=NVIDIA_DEVICE_PLUGIN_REPO,
        namespace=DEVICE_PLUGIN_NS,
        release="nvidia-device-plugin",
        chart="nvidia-device-plugin",
        version=NVIDIA_DEVICE_PLUGIN_VERSION,
        values=values,
    )


def _generic_daemonset(kinds: list[str]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": _GENERIC_NAME, "app.kubernetes.io/part-of": "kubevc"}
    args = ["--domain", _RESOURCE_DOMAIN]
    for kind in kinds:
        args += ["--device", json.dumps(_GENERIC_DEVICES[kind], separators=(",", ":"))]
    probe = {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30, "timeoutSeconds": 5}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": _GENERIC_NAME,
            "namespace": DEVICE_PLUGIN_NS,
            "labels": labels,
            "annotations": dict(_CHECKOV_SKIPS),
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": _GENERIC_NAME}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels, "annotations": dict(_CHECKOV_SKIPS)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "priorityClassName": "system-node-critical",
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": ACCELERATOR_LABEL, "operator": "In", "values": kinds}
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "tolerations": [{"key": ACCELERATOR_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
                    "securityContext": {
                        "runAsUser": 0,
                        "runAsGroup": 0,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "device-plugin",
                            "image": DEVICE_PLUGIN_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "args": args,
                            "ports": [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}],
                            "livenessProbe": {**probe, "initialDelaySeconds": 10},
                            "readinessProbe": probe,
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"cpu": "100m", "memory": "64Mi"},
                            },
                            "securityContext": {
                                "privileged": False,
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "device-plugins", "mountPath": "/var/lib/kubelet/device-plugins"},
                                {"name": "dev", "mountPath": "/dev", "readOnly": True},
                                {"name": "sys", "mountPath": "/sys", "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "device-plugins",
                            "hostPath": {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"},
                        },
                        {"name": "dev", "hostPath": {"path": "/dev", "type": "Directory"}},
                        {"name": "sys", "hostPath": {"path": "/sys", "type": "Directory"}},
                    ],
                },
            },
        },
    }


def _deny_ingress() -> dict[str, Any]:
    """The device plugins take no traffic: only the kubelet talks to them, over their socket."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-ingress", "namespace": DEVICE_PLUGIN_NS},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def region_accelerator_files(region: RegionSpec) -> dict[str, bytes]:
    """The region's device-plugin folder (nothing when no node has an accelerator)."""
    folder = accelerators_folder(region)
    if folder is None:
        return {}
    kinds = region_accelerator_kinds(region)
    files = {
        f"{folder}/namespace.yaml": generated(namespace(DEVICE_PLUGIN_NS, "privileged")),
        f"{folder}/network-policy.yaml": generated(_deny_ingress()),
    }
    resources = ["namespace.yaml", "network-policy.yaml"]
    gpu_labels = sorted(kinds & {"nvidia", "jetson"})
    if gpu_labels:
        files[f"{folder}/nvidia-device-plugin.yaml"] = generated_docs(_nvidia_docs(gpu_labels))
        resources.append("nvidia-device-plugin.yaml")
    generic: list[str] = [kind for kind in ("coral", "hailo") if kind in kinds]
    if generic:
        files[f"{folder}/generic-device-plugin.yaml"] = generated(_generic_daemonset(generic))
        resources.append("generic-device-plugin.yaml")
    files[f"{folder}/kustomization.yaml"] = generated(kustomization(resources))
    return files
