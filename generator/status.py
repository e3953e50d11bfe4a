"""Live state of the fleet's regions: collection, verdicts, reconcile requests, live suspend.

Every region is read through its own kube context (``RegionSpec.effective_kube_context``) of the
operator's kubeconfig with the ``kubernetes`` client, in a thread of its own with a deadline, so one
unreachable region never holds up the others (:func:`collect_fleet`). What is read, and the exact
API paths (the API contract the tests hold this module to):

* ``GET /version``: reachable, server version, latency;
* ``GET /api/v1/nodes``: ready/total by architecture, NotReady and pressure conditions;
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

import datetime as dt
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "EXIT_CODES",
    "FLUX_NS",
    "REQUESTED_AT",
    "STATUS_SCHEMA_VERSION",
    "DeploymentState",
    "FleetStatus",
    "FluxState",
    "KubeApi",
    "NodeSummary",
    "ReconcileEvent",
    "RegionFault",
    "RegionStatus",
    "RegionTarget",
    "SourceState",
    "collect_fleet",
    "collect_region",
    "compare_revision",
    "connect",
    "load_client",
    "reconcile_region",
    "set_live_suspend",
]

STATUS_SCHEMA_VERSION = 1
FLUX_NS = "flux-system"
SYNC_NAME = "flux-system"  # the GitRepository and the Kustomization written by gotk-sync.yaml
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
MERGE_PATCH = "application/merge-patch+json"
PART_OF = "app.kubernetes.io/part-of=kubevc"
PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")

SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")
KUSTOMIZE = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HELM = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")

Verdict = Literal["ok", "degraded", "out-of-sync", "unreachable"]
VERDICTS: tuple[Verdict, ...] = ("ok", "out-of-sync", "degraded", "unreachable")  # best to worst
EXIT_CODES: dict[Verdict, int] = {"ok": 0, "out-of-sync": 2, "degraded": 2, "unreachable": 3}
SyncState = Literal[
    "in-sync", "behind", "ahead", "diverged", "unknown-revision", "no-artifact", "not-checked"
]


# --------------------------------------------------------------------------- faults


class RegionFault(Exception):
    """A short, printable reason why (part of) a region could not be read; never a traceback."""

    def __init__(self, reason: str, unreachable: bool = True, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.status = status


def _status_message(body: Any) -> str:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return ""
    if isinstance(data, dict):
        return str(data.get("message", ""))[:160]
    return ""


def timeout_reason(timeout: float, what: str | None) -> str:
    """The one wording for a region that did not answer in time (``what``: the call in flight)."""
    return f"no answer within {timeout:g}s" + (f" ({what})" if what else "")


def describe_error(exc: BaseException, what: str, timeout: float) -> RegionFault:
    """Map a client error to a one-line :class:`RegionFault` (no credentials, no traceback)."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, RegionFault):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = _status_message(exc.body)
        if status == 401:
            return RegionFault(
                f"unauthorized (401) on {what}: the API refused the credentials (expired?)", status=401
            )
        if status == 403:
            detail = f": {message}" if message else ""
            return RegionFault(f"forbidden (403) on {what}{detail}", status=403)
        if status == 404:
            return RegionFault(f"not found (404) on {what}", unreachable=False, status=404)
        detail = f": {message}" if message else ""
        return RegionFault(f"HTTP {status} on {what}{detail}", unreachable=status >= 500, status=status)
    text = f"{exc.__class__.__name__}: {exc}"
    if "timed out" in text.lower() or "timeout" in exc.__class__.__name__.lower():
        return RegionFault(timeout_reason(timeout, what))
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
        return RegionFault(f"TLS error on {what}: the API certificate is not trusted by the kubeconfig CA")
    if "Connection refused" in text or "NewConnectionError" in text:
        return RegionFault(f"connection refused ({what})")
    if "Name or service not known" in text or "NameResolutionError" in text:
        return RegionFault(f"API host name does not resolve ({what})")
    return RegionFault(f"cannot reach the API ({what}): {exc.__class__.__name__}")


# --------------------------------------------------------------------------- the API client


class KubeApi:
    """The few calls kubevc makes on a region's API, as raw JSON (``_preload_content=False``)."""

    def __init__(self, client: Any, timeout: float) -> None:
        from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi, VersionApi

        self.client = client
        self.timeout = timeout
        # The call in flight, so a region cut off by the fleet deadline is described exactly as one
        # whose own call timed out: which of the two fires first depends only on scheduling.
        self.pending: str | None = None
        self._version = VersionApi(client)
        self._core = CoreV1Api(client)
        self._apps = AppsV1Api(client)
        self._custom = CustomObjectsApi(client)

    def _call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.pending = what
        try:
            response = func(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            data: Any = json.loads(response.data)
        except Exception as exc:  # every client/transport error becomes a short reason
            raise describe_error(exc, what, self.timeout) from None
        finally:
            self.pending = None
        if not isinstance(data, dict):
            raise RegionFault(f"unexpected answer on {what}", unreachable=False)
        return data

    def version(self) -> dict[str, Any]:
        return self._call("/version", self._version.get_code)

    def nodes(self) -> list[dict[str, Any]]:
        return _items(self._call("nodes", self._core.list_node))

    def deployments(self, namespace: str) -> list[dict[str, Any]]:
        data = self._call(
            f"deployments in {namespace}",
            self._apps.list_namespaced_deployment,
            namespace,
            label_selector=PART_OF,
        )
        return _items(data)

    def flux_list(self, kind: tuple[str, str, str], namespace: str | None = FLUX_NS) -> list[dict[str, Any]]:
        group, version, plural = kind
        what = f"{plural}.{group}/{version}"
        try:
            if namespace is None:
                data = self._call(what, self._custom.list_cluster_custom_object, group, version, plural)
            else:
                data = self._call(
                    what, self._custom.list_namespaced_custom_object, group, version, namespace, plural
                )
        except RegionFault as fault:
            if fault.status == 404:
                raise RegionFault(
                    f"Flux is not installed ({group}/{version} is not served: no CRDs)", unreachable=False
                ) from None
            raise
        return _items(data)

    def flux_get(self, kind: tuple[str, str, str], name: str, namespace: str = FLUX_NS) -> dict[str, Any]:
        group, version, plural = kind
        return self._call(
            f"{plural}.{group}/{version} {namespace}/{name}",
            self._custom.get_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
        )

    def flux_merge_patch(
        self, kind: tuple[str, str, str], name: str, body: dict[str, Any], namespace: str = FLUX_NS
    ) -> dict[str, Any]:
        group, version, plural = kind
        return self._call(
            f"patch {plural}.{group}/{version} {namespace}/{name}",
            self._custom.patch_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
            body,
            _content_type=MERGE_PATCH,
        )


def _items(data: dict[str, Any]) -> list[dict[str, Any]]:
    items = data.get("items") or []
    return [i for i in items if isinstance(i, dict)]


def load_client() -> None:
    """Import the ``kubernetes`` client in the calling thread (its first import is not thread-safe)."""
    import kubernetes.client
    import kubernetes.config

    _ = (kubernetes.client.ApiClient, kubernetes.config.load_kube_config)


def connect(kubeconfig: str | None, context: str, timeout: float) -> KubeApi:
    """A :class:`KubeApi` for ``context`` of ``kubeconfig`` (None: ``$KUBECONFIG`` or ~/.kube/config).

    The kubeconfig is only read (``persist_config=False``); a missing file or context is a fault.
    """
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config import list_kube_config_contexts, load_kube_config
    from kubernetes.config.config_exception import ConfigException

    if kubeconfig is None:  # read the environment now, not when the client was first imported
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    shown = kubeconfig
    if not any(Path(part).expanduser().is_file() for part in kubeconfig.split(os.pathsep) if part):
        raise RegionFault(f"kubeconfig {shown} does not exist")
    try:
        contexts, _ = list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        raise RegionFault(f"cannot read kubeconfig {shown}: {exc.__class__.__name__}") from None
    if context not in {c.get("name") for c in contexts or []}:
        raise RegionFault(f"kube context {context!r} is not in kubeconfig {shown}")
    configuration = Configuration()
    try:
        load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError, ValueError) as exc:
        raise RegionFault(f"kube context {context!r} is unusable: {exc.__class__.__name__}") from None
    configuration.retries = False  # the per-region deadline is the only retry policy
    return KubeApi(ApiClient(configuration), timeout)


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
        return max((r.exit_code for r in self.regions), default=0)

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


# --------------------------------------------------------------------------- git revisions


def parse_revision(revision: str | None) -> str | None:
    """The commit sha of a Flux artifact revision: ``main@sha1:<sha>`` (v1) or ``main/<sha>`` (old)."""
    if not revision:
        return None
    match = re.search(r"(?:@sha1:|@sha256:|/)([0-9a-f]{40}|[0-9a-f]{64})$", revision)
    if match:
        return match.group(1)
    return revision if re.fullmatch(r"[0-9a-f]{40}", revision) else None


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def compare_revision(root: Path, head: str | None, revision: str | None) -> tuple[SyncState, int | None]:
    """Where the region's artifact revision stands against the fleet repo's commit ``head``."""
    sha = parse_revision(revision)
    if sha is None:
        return "no-artifact", None
    if head is None:
        return "not-checked", None
    if sha == head:
        return "in-sync", 0
    if _git(root, "cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
        return "unknown-revision", None
    if _git(root, "merge-base", "--is-ancestor", sha, head).returncode == 0:
        count = _git(root, "rev-list", "--count", f"{sha}..{head}").stdout.strip()
        return "behind", int(count) if count.isdigit() else None
    if _git(root, "merge-base", "--is-ancestor", head, sha).returncode == 0:
        count = _git(root, "rev-list", "--count", f"{head}..{sha}").stdout.strip()
        return "ahead", int(count) if count.isdigit() else None
    return "diverged", None


def fleet_commit(root: Path, branch: str | None = None) -> str | None:
    """The commit to compare regions with: the local ``branch`` when it exists, else HEAD."""
    for ref in ([f"refs/heads/{branch}"] if branch else []) + ["HEAD"]:
        out = _git(root, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}").stdout.strip()
        if out:
            return out
    return None


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


def _condition(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return {}


def _flux_state(kind: str, obj: dict[str, Any]) -> FluxState:
    meta = obj.get("metadata") or {}
    ready = _condition(obj)
    status = obj.get("status") or {}
    return FluxState(
        kind=kind,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        ready=str(ready.get("status", "Unknown")),
        reason=str(ready.get("reason", "")),
        message=_short(str(ready.get("message", ""))),
        suspended=bool((obj.get("spec") or {}).get("suspend", False)),
        last_applied_revision=status.get("lastAppliedRevision"),
    )


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        ready = _condition(node).get("status") == "True"
        slot = summary.by_arch.setdefault(arch, {"ready": 0, "total": 0})
        slot["total"] += 1
        summary.total += 1
        if ready:
            slot["ready"] += 1
            summary.ready += 1
        else:
            summary.problems.append(f"node {name} NotReady")
        for pressure in PRESSURE:
            if _condition(node, pressure).get("status") == "True":
                summary.problems.append(f"node {name} {pressure}")
    return summary


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
        result.nodes = _nodes(api.nodes())
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
        ready = _condition(repo)
        revision = ((repo.get("status") or {}).get("artifact") or {}).get("revision")
        source = SourceState(
            revision=revision,
            ready=str(ready.get("status", "Unknown")),
            reason=str(ready.get("reason", "")),
            message=_short(str(ready.get("message", ""))),
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


# --------------------------------------------------------------------------- reconcile / suspend


def requested_at_now() -> str:
    """The annotation value, as ``flux reconcile`` writes it (RFC 3339 with nanoseconds, UTC)."""
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 1000:09d}Z"


def reconcile_patch(token: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {REQUESTED_AT: token}}}


@dataclass(frozen=True)
class ReconcileEvent:
    """One line of ``reconcile`` progress for a region."""

    region: str
    kind: str
    name: str
    state: Literal["requested", "ready", "failed", "skipped", "timeout"]
    detail: str = ""


def _is_handled(obj: dict[str, Any], token: str) -> bool:
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    if status.get("lastHandledReconcileAt") != token:
        return False
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    return generation is None or observed is None or int(observed) >= int(generation)


def reconcile_region(
    api: KubeApi,
    region: str,
    wait: bool,
    timeout: float,
    emit: Callable[[ReconcileEvent], None],
    poll_interval: float = 1.0,
    token: str | None = None,
) -> bool:
    """Request a reconcile of the GitRepository then every Kustomization; with ``wait`` follow them.

    Returns True when every requested object became Ready (or, without ``wait``, was requested).
    Suspended Kustomizations are skipped (Flux ignores requests for them), as ``flux reconcile`` does.
    """
    token = token or requested_at_now()
    body = reconcile_patch(token)
    targets: list[tuple[tuple[str, str, str], str, str]] = []
    try:
        repo = api.flux_get(SOURCE, SYNC_NAME)
    except RegionFault as fault:
        if fault.status == 404:
            raise RegionFault(
                f"no GitRepository {FLUX_NS}/{SYNC_NAME} (Flux not installed or not bootstrapped)",
                unreachable=False,
            ) from None
        raise
    if (repo.get("spec") or {}).get("suspend"):
        emit(ReconcileEvent(region, "GitRepository", SYNC_NAME, "skipped", "suspended"))
    else:
        api.flux_merge_patch(SOURCE, SYNC_NAME, body)
        emit(ReconcileEvent(region, "GitRepository", SYNC_NAME, "requested", token))
        targets.append((SOURCE, "GitRepository", SYNC_NAME))
    kustomizations = sorted(
        api.flux_list(KUSTOMIZE),
        key=lambda o: (str(o["metadata"].get("name")) != SYNC_NAME, str(o["metadata"].get("name"))),
    )
    for obj in kustomizations:
        name = str(obj["metadata"]["name"])
        if (obj.get("spec") or {}).get("suspend"):
            emit(ReconcileEvent(region, "Kustomization", name, "skipped", "suspended"))
            continue
        api.flux_merge_patch(KUSTOMIZE, name, body)
        emit(ReconcileEvent(region, "Kustomization", name, "requested", token))
        targets.append((KUSTOMIZE, "Kustomization", name))
    if not wait:
        return True
    pending = list(targets)
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    ok = True
    while pending:
        for item in list(pending):
            kind_api, kind, name = item
            obj = api.flux_get(kind_api, name)
            ready = _condition(obj)
            last[name] = ": ".join(
                p for p in (str(ready.get("reason", "")), str(ready.get("message", ""))) if p
            )
            if not _is_handled(obj, token):
                continue
            if ready.get("status") == "True":
                revision = ((obj.get("status") or {}).get("artifact") or {}).get("revision") or (
                    obj.get("status") or {}
                ).get("lastAppliedRevision", "")
                emit(ReconcileEvent(region, kind, name, "ready", str(revision or "")))
                pending.remove(item)
            elif ready.get("status") == "False" and ready.get("reason") not in (
                "Progressing",
                "DependencyNotReady",
            ):
                emit(ReconcileEvent(region, kind, name, "failed", _short(last[name])))
                pending.remove(item)
                ok = False
        if not pending:
            break
        if time.monotonic() >= deadline:
            for _, kind, name in pending:
                emit(ReconcileEvent(region, kind, name, "timeout", _short(last.get(name, ""))))
            return False
        time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
    return ok


def set_live_suspend(api: KubeApi, suspend: bool) -> list[str]:
    """Merge-patch ``spec.suspend`` on every Kustomization of the region except the flux-system sync.

    The sync Kustomization stays live so that the git commit (resume) still reaches the region.
    Resuming also requests a reconcile, as ``flux resume`` does. Returns the patched names.
    """
    patched: list[str] = []
    for obj in api.flux_list(KUSTOMIZE):
        name = str(obj["metadata"]["name"])
        if name == SYNC_NAME:
            continue
        body: dict[str, Any] = {"spec": {"suspend": suspend}}
        if not suspend:
            body["metadata"] = {"annotations": {REQUESTED_AT: requested_at_now()}}
        api.flux_merge_patch(KUSTOMIZE, name, body)
        patched.append(name)
    return patched
