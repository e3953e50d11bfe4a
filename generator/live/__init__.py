"""The fleet as it runs: each region read through its kube context, Flux asked to act now.

What is read and verdicts: :mod:`kubevc.generator.live._status` (``kubevc-gen status``); the API
client: :class:`KubeApi`; reconcile requests and live suspend/resume: :func:`reconcile_region`,
:func:`set_live_suspend`. Git revisions are compared with :mod:`kubevc.generator.repo`'s git.
"""

from ._kube import FLUX_NS, KubeApi, connect, describe_error, load_client, timeout_reason
from ._reconcile import REQUESTED_AT, ReconcileEvent, reconcile_patch, reconcile_region, set_live_suspend
from ._status import (
    EXIT_CODES,
    STATUS_SCHEMA_VERSION,
    VERDICTS,
    AcceleratorState,
    ApiState,
    DeploymentState,
    FleetStatus,
    FluxState,
    NodeSummary,
    RegionStatus,
    RegionTarget,
    SourceState,
    Verdict,
    collect_fleet,
    collect_region,
    worst_exit_code,
)

__all__ = [
    "EXIT_CODES",
    "FLUX_NS",
    "REQUESTED_AT",
    "STATUS_SCHEMA_VERSION",
    "VERDICTS",
    "AcceleratorState",
    "ApiState",
    "DeploymentState",
    "FleetStatus",
    "FluxState",
    "KubeApi",
    "NodeSummary",
    "ReconcileEvent",
    "RegionStatus",
    "RegionTarget",
    "SourceState",
    "Verdict",
    "collect_fleet",
    "collect_region",
    "connect",
    "describe_error",
    "load_client",
    "reconcile_patch",
    "reconcile_region",
    "set_live_suspend",
    "timeout_reason",
    "worst_exit_code",
]
