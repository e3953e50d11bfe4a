"""Live state of the fleet's regions: collection, verdicts, reconcile requests, live suspend.

Every region is read through its own kube context (``RegionSpec.effective_kube_context``) of the
operator's kubeconfig with the ``kubernetes`` client, in a thread of its own with a deadline, so one
unreachable region never holds up the others (:func:`collect_fleet`). What is read, and the exact
API paths (the API contract the tests hold this module to):

* ``GET /version``: reachable, server version, latency;
* ``GET /api/v1/nodes``: ready/total by architecture, NotReady and pressure conditions, and the
  accelerator resources' ``status.capacity``/``status.allocatable`` (``nvidia.com/gpu``,
  ``kubevc.io/coral-tpu``, ``kubevc.io/hailo``);
* ``GET /api/v1/pods?fieldSelector=status.phase=Running`` (all namespaces), only when some node has
  an accelerator: how many of those devices running pods hold (their containers' limits);
* ``GET /apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories``: the
  ``flux-system`` GitRepository's ``status.artifact.revision`` (``main@sha1:<sha>``), compared with
  the fleet repo's local commit (:func:`compare_revision`);
* ``GET /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations`` and
  ``GET /apis/helm.toolkit.fluxcd.io/v2/helmreleases``: Ready condition, reason, message, suspend;
* ``GET /apis/apps/v1/namespaces/<fleet namespace>/deployments`` with
  ``labelSelector=app.kubernetes.io/part-of=kubevc``: ready replicas of the serving
  (``model-server``) and gateway Deployments.

Verdicts (worst first): ``unreachable`` (no answer in time, connection/TLS error, missing context,
401 or 403: the region's state cannot be seen), ``degraded`` (a node, a Flux object or a Deployment
is not ready, or Flux is not installed), ``out-of-sync`` (the region runs another revision than the
fleet repo's local commit), ``ok``. Reconcile requests and suspend/resume are merge-patches
(``Content-Type: application/merge-patch+json``) on the same Flux objects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import RegionFault
from ..repo import SyncState, compare_revision, parse_revision
from ..spec import ACCELERATOR_RESOURCES
from ._kube import (
    FLUX_NS,
    HELM,
    KUSTOMIZE,
    SOURCE,
    SYNC_NAME,
    KubeApi,
    condition,
    connect,
    load_client,
    shorten,
    timeout_reason,
)

STATUS_SCHEMA_VERSION = 1
PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")

Verdict = Literal["ok", "degraded", "out-of-sync", "unreachable"]
VERDICTS: tuple[Verdict, ...] = ("ok", "out-of-sync", "degraded", "unreachable")  # best to worst
# README "Exit codes": 3 unreachable, 4 degraded (out of sync included); 2 is click's usage error.
EXIT_CODES: dict[Verdict, int] = {"ok": 0, "out-of-sync": 4, "degraded": 4, "unreachable": 3}
# The worst region sets the exit code: unreachable (3) is worse than degraded (4), which is worse
# than ok (0).
_SEVERITY = {0: 0, 4: 1, 3: 2}


def worst_exit_code(codes: Iterable[int]) -> int:
    """The exit code of the worst of ``codes`` (unreachable over degraded over ok)."""
    return max(codes, key=lambda code: _SEVERITY.get(code, 3), default=0)


# --------------------------------------------------------------------------- typed results


@dataclass
class ApiState:
    reachable: bool = False
    version: str | None = None
    latency_ms: float | None = None


@dataclass
class NodeSummary:
    ready: int = 0
    total: int = 0
    by_arch: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class SourceState:
    name: str = SYNC_NAME
    revision: str | None = None
    ready: str = "Unknown"
    reason: str = ""
    message: str = ""
    sync: SyncState = "not-checked"
    behind_by: int | None = None
    suspended: bool = False


@dataclass
class FluxState:
    kind: str
    namespace: str
    name: str
    ready: str  # "True" | "False" | "Unknown" (the Ready condition's status)
    reason: str
    message: str
    suspended: bool
    last_applied_revision: str | None = None


@dataclass
class DeploymentState:
    name: str
    component: str  # "serving" | "gateway" | the chart's component label
    ready: int
    desired: int


@dataclass
class AcceleratorState:
    """One accelerator resource of a region: devices the nodes report and running pods hold."""

    resource: str  # nvidia.com/gpu, kubevc.io/coral-tpu, kubevc.io/hailo
    capacity: int  # sum of the nodes' status.capacity
    allocatable: int  # sum of the nodes' status.allocatable (healthy devices)
    used: int  # sum of the limits of running pods' containers
    nodes: list[str] = field(default_factory=list)  # the nodes that have it


@dataclass
class RegionStatus:
    region: str
    context: str | None
    verdict: Verdict = "unreachable"
    reason: str = ""
    api: ApiState = field(default_factory=ApiState)
    nodes: NodeSummary | None = None
    source: SourceState | None = None
    kustomizations: list[FluxState] = field(default_factory=list)
    helm_releases: list[FluxState] = field(default_factory=list)
    deployments: list[DeploymentState] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    spec_suspended: bool = False
    problems: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    accelerators: list[AcceleratorState] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


@dataclass
class FleetStatus:
    fleet_head: str | None
    timeout_s: float
    regions: list[RegionStatus]

    @property
    def counts(self) -> dict[Verdict, int]:
        counts: dict[Verdict, int] = dict.fromkeys(VERDICTS, 0)
        for region in self.regions:
            counts[region.verdict] += 1
        return counts

    @property
    def exit_code(self) -> int:
        return worst_exit_code(r.exit_code for r in self.regions)

    def summary_line(self) -> str:
        counts = self.counts
        parts = [f"{counts[v]} {v}" for v in ("ok", "degraded", "out-of-sync", "unreachable") if counts[v]]
        return f"{len(self.regions)} region(s): " + (", ".join(parts) or "none")

    def to_json(self) -> dict[str, Any]:
        """The stable ``--output json`` document (schemaVersion 1; keys are camelCase)."""
        counts = self.counts
        return {
            "schemaVersion": STATUS_SCHEMA_VERSION,
            "fleetHead": self.fleet_head,
            "timeoutSeconds": self.timeout_s,
            "regions": [_camel(asdict(r)) for r in self.regions],
            "summary": {
                "total": len(self.regions),
                "ok": counts["ok"],
                "degraded": counts["degraded"],
                "outOfSync": counts["out-of-sync"],
                "unreachable": counts["unreachable"],
                "exitCode": self.exit_code,
            },
        }


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            head, *rest = str(key).split("_")
            name = head + "".join(p.title() for p in rest) if key not in {"by_arch"} else "byArch"
            # architecture names inside byArch are data, not keys to convert
            out[name] = item if key == "by_arch" else _camel(item)
        return out
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


# --------------------------------------------------------------------------- collection


@dataclass(frozen=True)
class RegionTarget:
    """What :func:`collect_region` needs to know about one region (from its spec, or a fault)."""

    name: str
    context: str | None
    namespace: str = "kubevc"
    models: tuple[str, ...] = ()
    suspended: bool = False
    compare_with: str | None = None  # the fleet commit for this region's branch
    fault: str | None = None  # e.g. "unknown region": reported without contacting anything


def _flux_state(kind: str, obj: dict[str, Any]) -> FluxState:
    meta = obj.get("metadata") or {}
    ready = condition(obj)
    status = obj.get("status") or {}
    return FluxState(
        kind=kind,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        ready=str(ready.get("status", "Unknown")),
        reason=str(ready.get("reason", "")),
        message=shorten(str(ready.get("message", ""))),
        suspended=bool((obj.get("spec") or {}).get("suspend", False)),
        last_applied_revision=status.get("lastAppliedRevision"),
    )


def _nodes(items: Iterable[dict[str, Any]]) -> NodeSummary:
    summary = NodeSummary()
    for node in items:
        meta = node.get("metadata") or {}
        status = node.get("status") or {}
        name = str(meta.get("name", "?"))
        arch = str(
            (status.get("nodeInfo") or {}).get("architecture")
            or (meta.get("labels") or {}).get("kubernetes.io/arch")
            or "unknown"
        )
        ready = condition(node).get("status") == "True"
        slot = summary.by_arch.setdefault(arch, {"ready": 0, "total": 0})
        slot["total"] += 1
        summary.total += 1
        if ready:
            slot["ready"] += 1
            summary.ready += 1
        else:
            summary.problems.append(f"node {name} NotReady")
        for pressure in PRESSURE:
            if condition(node, pressure).get("status") == "True":
                summary.problems.append(f"node {name} {pressure}")
    return summary


def _count(value: Any) -> int:
    """A device count of a resource quantity (extended resources are whole numbers)."""
    try:
        return int(str(value))
    except ValueError:
        return 0


def _accelerators(node_items: Sequence[dict[str, Any]], api: KubeApi) -> list[AcceleratorState]:
    """Capacity, allocatable and use of each accelerator resource some node has."""
    found: dict[str, AcceleratorState] = {}
    for node in node_items:
        status = node.get("status") or {}
        capacity = status.get("capacity") or {}
        allocatable = status.get("allocatable") or {}
        for resource in ACCELERATOR_RESOURCES.values():
            total = _count(capacity.get(resource, 0))
            if total <= 0:
                continue
            state = found.setdefault(resource, AcceleratorState(resource, 0, 0, 0))
            state.capacity += total
            state.allocatable += _count(allocatable.get(resource, 0))
            state.nodes.append(str((node.get("metadata") or {}).get("name", "?")))
    if not found:
        return []
    for pod in api.running_pods():
        for container in (pod.get("spec") or {}).get("containers") or []:
            limits = (container.get("resources") or {}).get("limits") or {}
            for resource, state in found.items():
                state.used += _count(limits.get(resource, 0))
    return [found[r] for r in sorted(found)]


def _component(deployment: dict[str, Any]) -> str:
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    component = str(labels.get("app.kubernetes.io/component", ""))
    return {"model-server": "serving"}.get(component, component or "other")


def collect_region(target: RegionTarget, api: KubeApi, fleet_root: Path | None) -> RegionStatus:
    """Read one region and give it a verdict; faults become the row's reason, never an exception."""
    result = RegionStatus(
        region=target.name,
        context=target.context,
        models=list(target.models),
        spec_suspended=target.suspended,
    )
    degraded: list[str] = []
    drift: list[str] = []
    start = time.monotonic()
    try:
        version = api.version()
        result.api = ApiState(
            reachable=True,
            version=str(version.get("gitVersion", "")) or None,
            latency_ms=round((time.monotonic() - start) * 1000, 1),
        )
        node_items = api.nodes()
        result.nodes = _nodes(node_items)
        result.accelerators = _accelerators(node_items, api)
        degraded.extend(result.nodes.problems)
        if result.nodes.total == 0:
            degraded.append("no nodes registered")
        try:
            _collect_flux(target, api, fleet_root, result, degraded, drift)
        except RegionFault as fault:
            if fault.unreachable:
                raise
            degraded.append(fault.reason)
        _collect_deployments(target, api, result, degraded)
    except RegionFault as fault:
        result.verdict = "unreachable"
        result.reason = fault.reason
        result.problems = [fault.reason]
        return result
    finally:
        result.elapsed_ms = round((time.monotonic() - start) * 1000, 1)
    result.problems = degraded + drift
    if degraded:
        result.verdict = "degraded"
        result.reason = degraded[0] + (f" (+{len(degraded) - 1} more)" if len(degraded) > 1 else "")
    elif drift:
        result.verdict = "out-of-sync"
        result.reason = drift[0] + (f" (+{len(drift) - 1} more)" if len(drift) > 1 else "")
    else:
        result.verdict = "ok"
    return result


def _collect_flux(
    target: RegionTarget,
    api: KubeApi,
    fleet_root: Path | None,
    result: RegionStatus,
    degraded: list[str],
    drift: list[str],
) -> None:
    repos = {str((o.get("metadata") or {}).get("name")): o for o in api.flux_list(SOURCE)}
    repo = repos.get(SYNC_NAME)
    if repo is None:
        degraded.append(f"no GitRepository {FLUX_NS}/{SYNC_NAME} (Flux not bootstrapped for this fleet)")
    else:
        ready = condition(repo)
        revision = ((repo.get("status") or {}).get("artifact") or {}).get("revision")
        source = SourceState(
            revision=revision,
            ready=str(ready.get("status", "Unknown")),
            reason=str(ready.get("reason", "")),
            message=shorten(str(ready.get("message", ""))),
            suspended=bool((repo.get("spec") or {}).get("suspend", False)),
        )
        if fleet_root is not None:
            source.sync, source.behind_by = compare_revision(fleet_root, target.compare_with, revision)
        result.source = source
        if source.ready != "True" and not source.suspended:
            degraded.append(f"GitRepository {SYNC_NAME} not Ready: {source.reason or source.message}")
        short = (parse_revision(revision) or "")[:12]
        if source.sync == "behind":
            drift.append(f"behind by {source.behind_by} commit(s) (region at {short})")
        elif source.sync == "unknown-revision":
            drift.append(f"unknown revision {short} (not in the local fleet repo: fetch?)")
        elif source.sync in ("ahead", "diverged"):
            drift.append(f"region revision {short} is {source.sync} of the local fleet repo (pull?)")
        elif source.sync == "no-artifact":
            drift.append("GitRepository has no artifact yet")
    result.kustomizations = [_flux_state("Kustomization", o) for o in api.flux_list(KUSTOMIZE)]
    result.helm_releases = [_flux_state("HelmRelease", o) for o in api.flux_list(HELM, namespace=None)]
    artifact = result.source.revision if result.source else None
    for obj in (*result.kustomizations, *result.helm_releases):
        if obj.ready != "True" and not obj.suspended:
            detail = ": ".join(p for p in (obj.reason, obj.message) if p)
            degraded.append(f"{obj.kind} {obj.name} not Ready" + (f" ({detail})" if detail else ""))
        if (
            obj.kind == "Kustomization"
            and not obj.suspended
            and obj.ready == "True"
            and artifact
            and obj.last_applied_revision
            and obj.last_applied_revision != artifact
        ):
            drift.append(f"Kustomization {obj.name} has not applied {artifact} yet")
    live_suspended = [k.name for k in result.kustomizations if k.suspended]
    if target.suspended and not live_suspended and result.kustomizations:
        drift.append("suspended in git but no Kustomization is suspended live (run `kubevc-gen suspend`)")
    if not target.suspended and live_suspended:
        drift.append(f"suspended live but not in git: {', '.join(live_suspended)} (`kubevc-gen resume`?)")


def _collect_deployments(
    target: RegionTarget, api: KubeApi, result: RegionStatus, degraded: list[str]
) -> None:
    for item in api.deployments(target.namespace):
        status = item.get("status") or {}
        desired = (item.get("spec") or {}).get("replicas")
        state = DeploymentState(
            name=str((item.get("metadata") or {}).get("name", "")),
            component=_component(item),
            ready=int(status.get("readyReplicas") or 0),
            desired=int(1 if desired is None else desired),
        )
        result.deployments.append(state)
        if state.ready < state.desired:
            degraded.append(f"Deployment {state.name}: {state.ready}/{state.desired} ready")
    if target.models and not target.suspended:
        for component in ("serving", "gateway"):
            if not any(d.component == component for d in result.deployments):
                degraded.append(f"no {component} Deployment in namespace {target.namespace}")


def collect_fleet(
    targets: Sequence[RegionTarget],
    kubeconfig: str | None,
    timeout: float,
    fleet_root: Path | None,
    fleet_head: str | None = None,
    connector: Callable[[str | None, str, float], KubeApi] = connect,
) -> FleetStatus:
    """Every region in its own daemon thread; a region not done by ``timeout`` is ``unreachable``.

    The wait is one shared deadline (``timeout`` after the start, plus a small grace), so the whole
    call returns within about ``timeout`` however many regions hang.
    """
    load_client()
    results: dict[str, RegionStatus] = {}
    apis: dict[str, KubeApi] = {}
    lock = threading.Lock()

    def work(target: RegionTarget) -> None:
        try:
            if target.fault is not None or target.context is None:
                raise RegionFault(target.fault or "no kube context")
            api = connector(kubeconfig, target.context, timeout)
            with lock:
                apis[target.name] = api
            status = collect_region(target, api, fleet_root)
        except RegionFault as fault:
            status = RegionStatus(target.name, target.context, reason=fault.reason, problems=[fault.reason])
        except Exception as exc:  # a bug must still not hide the other regions
            reason = f"internal error while reading the region: {exc.__class__.__name__}: {exc}"
            status = RegionStatus(target.name, target.context, reason=reason, problems=[reason])
        with lock:
            results[target.name] = status

    threads = []
    for target in targets:
        thread = threading.Thread(target=work, args=(target,), name=f"status-{target.name}", daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    regions: list[RegionStatus] = []
    with lock:
        for target in targets:
            status = results.get(target.name)
            if status is None:
                api = apis.get(target.name)
                pending = api.pending if api is not None else None
                reason = timeout_reason(timeout, pending)
                status = RegionStatus(target.name, target.context, reason=reason, problems=[reason])
                status.elapsed_ms = round(timeout * 1000, 1)
            regions.append(status)
    return FleetStatus(fleet_head=fleet_head, timeout_s=timeout, regions=regions)
