"""Kubernetes API access of kubevc.nodeprep: every call to a cluster's API goes through here.

The join (node lookup, cluster-info, bootstrap token Secrets, readiness, labels) and the Flux
hand-over (namespaces, server-side apply of Flux objects, Secrets and the controllers) call these
functions with a client the caller built; API errors become :class:`JoinError` /
:class:`FluxSyncError` with the HTTP status and never a secret.

The ``kubernetes`` client is imported inside the functions on purpose, not to dodge a cycle: it
takes about a second to import, and every ``kubevc-gen`` command imports kubevc.nodeprep (which
exports this module's callers) while only ``node join`` and ``cluster init`` talk to an API.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .errors import FluxSyncError, JoinError
from .plans.bootstrap_token import NAMESPACE, Token, bootstrap_token_secret
from .plans.ca_pinning import ca_bundle_from_cluster_info
from .plans.cluster import Distribution

__all__ = [
    "APPLY_PATCH",
    "FIELD_MANAGER",
    "HttpStatusError",
    "apply_flux_object",
    "apply_secret_object",
    "call_path",
    "cluster_ca_bundle",
    "core_api",
    "core_api_for_context",
    "create_token_secret",
    "delete_token_secret",
    "ensure_namespace",
    "flux_apis",
    "label_node",
    "node_ready",
    "node_registered",
    "server_side_apply",
]

log = logging.getLogger(__name__)


# --- clients --------------------------------------------------------------------------------------


def core_api_for_context(kubeconfig: str, context: str) -> Any:
    """A ``CoreV1Api`` for one context of the operator's kubeconfig (JoinError if it is missing)."""
    from kubernetes.client import CoreV1Api
    from kubernetes.config import list_kube_config_contexts, new_client_from_config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, _ = list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as error:
        raise JoinError(f"cannot read kubeconfig {kubeconfig}: {error.__class__.__name__}") from None
    if context not in {c["name"] for c in contexts or []}:
        raise JoinError(f"kubeconfig {kubeconfig} has no context {context!r} (run `cluster init` first)")
    client = new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    return CoreV1Api(client)


def flux_apis(api_client: Any) -> tuple[Any, Any]:
    """``CoreV1Api`` and ``CustomObjectsApi`` on one API client."""
    from kubernetes.client import CoreV1Api, CustomObjectsApi

    return CoreV1Api(api_client), CustomObjectsApi(api_client)


# --- join -----------------------------------------------------------------------------------------


def node_registered(core: Any, region: str, node_name: str) -> bool:
    """Whether the Node object exists (JoinError when the API does not answer the question)."""
    from kubernetes.client.exceptions import ApiException

    try:
        core.read_node(node_name)
    except ApiException as error:
        if error.status != 404:
            raise JoinError(f"cannot read nodes on the {region} API (HTTP {error.status})") from None
        return False
    return True


def cluster_ca_bundle(core: Any, region: str) -> bytes:
    """The CA bundle the cluster publishes in ``kube-public/cluster-info``."""
    from kubernetes.client.exceptions import ApiException

    try:
        info = core.read_namespaced_config_map("cluster-info", "kube-public")
    except ApiException as error:
        raise JoinError(
            f"cannot read kube-public/cluster-info on the {region} API (HTTP {error.status})"
        ) from None
    return ca_bundle_from_cluster_info((info.data or {}).get("kubeconfig", ""))


def create_token_secret(core: Any, token: Token, distribution: Distribution) -> None:
    core.create_namespaced_secret(NAMESPACE, bootstrap_token_secret(token, distribution))


def delete_token_secret(core: Any, token: Token) -> bool:
    """Delete the token's Secret; False when it was already gone (expired and cleaned up).

    Any other API error is logged with the token's expiry (never its secret) and raised.
    """
    from kubernetes.client.exceptions import ApiException

    try:
        core.delete_namespaced_secret(token.secret_name, NAMESPACE)
    except ApiException as error:
        if error.status == 404:
            return False
        log.error(
            "could not delete %s (HTTP %s); it expires at %s",
            token.secret_name,
            error.status,
            token.expires,
        )
        raise
    return True


def node_ready(core: Any, node_name: str) -> bool | None:
    """True when the Node's Ready condition is True, False when not (yet), None if not registered."""
    from kubernetes.client.exceptions import ApiException

    try:
        node = core.read_node(node_name)
    except ApiException as error:
        if error.status != 404:
            raise
        return None
    for condition in (node.status.conditions or []) if node.status else []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


def label_node(core: Any, node_name: str, labels: dict[str, str]) -> None:
    core.patch_node(node_name, {"metadata": {"labels": labels}})


# --- Flux hand-over -------------------------------------------------------------------------------


def ensure_namespace(core: Any, namespace: str) -> bool:
    """Create the namespace; False when it already exists."""
    from kubernetes.client.exceptions import ApiException

    try:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    except ApiException as error:
        if error.status != 409:
            raise FluxSyncError(f"cannot create namespace {namespace} (HTTP {error.status})") from None
        return False
    return True


def apply_flux_object(api_client: Any, doc: dict[str, Any], group: str, version: str, plural: str) -> str:
    """Server-side apply one namespaced Flux object; returns ``created`` or ``configured``."""
    name, namespace = doc["metadata"]["name"], doc["metadata"]["namespace"]
    label = f"{doc['kind']} {namespace}/{name}"
    try:
        return server_side_apply(
            api_client, f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}", doc
        )
    except HttpStatusError as error:
        if error.status == 404:
            raise FluxSyncError(
                f"the cluster does not serve {group}/{version} {plural}: install the Flux controllers "
                "first (e.g. `flux install`), then run this again"
            ) from None
        raise FluxSyncError(f"cannot apply {label} (HTTP {error.status})") from None


def core_api(api_client: Any) -> Any:
    """The CoreV1Api of ``api_client``."""
    from kubernetes.client import CoreV1Api

    return CoreV1Api(api_client)


def apply_secret_object(api_client: Any, secret: dict[str, Any]) -> str:
    """Server-side apply one Secret (its namespace must exist); ``created`` or ``configured``.

    Errors name the Secret and the HTTP status only: a Secret's values never reach a message.
    """
    name, namespace = secret["metadata"]["name"], secret["metadata"]["namespace"]
    try:
        return server_side_apply(api_client, f"/api/v1/namespaces/{namespace}/secrets/{name}", secret)
    except HttpStatusError as error:
        raise FluxSyncError(f"cannot apply Secret {namespace}/{name} (HTTP {error.status})") from None


class HttpStatusError(Exception):
    """A non-2xx answer to :func:`call_path`."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def call_path(api_client: Any, path: str, method: str, body: Any = None) -> Any:
    """One request to an API path (any kind, for `flux install --export` output) through the
    client's own serialisation and auth; the decoded JSON answer, or HttpStatusError."""
    request = api_client.param_serialize(
        method,
        path,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request)
    response.read()
    if not 200 <= response.status < 300:
        raise HttpStatusError(response.status)
    return json.loads(response.data) if response.data else None


FIELD_MANAGER = "kubevc"
APPLY_PATCH = "application/apply-patch+yaml"


def server_side_apply(api_client: Any, path: str, doc: dict[str, Any]) -> str:
    """Kubernetes server-side apply of ``doc`` at its object ``path``: ``created`` or ``configured``.

    PATCH with ``application/apply-patch+yaml`` (the body is JSON, which is YAML), field manager
    ``kubevc`` and ``force=true``: kubevc owns every field it sets, even one another manager (a
    hand ``kubectl edit``) took; fields it does not set are left to their owners. HttpStatusError
    on a non-2xx answer.
    """
    request = api_client.param_serialize(
        "PATCH",
        path,
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": APPLY_PATCH, "Accept": "application/json"},
        body=json.dumps(doc),  # a str body goes out as it is, with the Content-Type above
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request)
    response.read()
    if not 200 <= response.status < 300:
        raise HttpStatusError(response.status)
    return "created" if response.status == 201 else "configured"
