"""The few kube API calls kubevc makes on a region, as raw JSON, with every error one short line.

The ``kubernetes`` client is imported inside the functions that use it: it takes a second to
import and only ``status``/``reconcile``/``suspend``/``resume`` need it (``kubevc-gen --help`` and
``render`` stay fast); :func:`load_client` imports it once in the calling thread before threads start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import RegionFault

FLUX_NS = "flux-system"
SYNC_NAME = "flux-system"  # the GitRepository and the Kustomization written by gotk-sync.yaml
MERGE_PATCH = "application/merge-patch+json"
PART_OF = "app.kubernetes.io/part-of=kubevc"

SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")
KUSTOMIZE = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HELM = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")


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
        return items(self._call("nodes", self._core.list_node))

    def running_pods(self) -> list[dict[str, Any]]:
        """Running pods of every namespace (what holds devices now)."""
        data = self._call(
            "pods", self._core.list_pod_for_all_namespaces, field_selector="status.phase=Running"
        )
        return items(data)

    def deployments(self, namespace: str) -> list[dict[str, Any]]:
        data = self._call(
            f"deployments in {namespace}",
            self._apps.list_namespaced_deployment,
            namespace,
            label_selector=PART_OF,
        )
        return items(data)

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
        return items(data)

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


def items(data: dict[str, Any]) -> list[dict[str, Any]]:
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


def condition(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return {}


def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
