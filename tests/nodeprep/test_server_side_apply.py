"""The Flux hand-over writes with Kubernetes server-side apply, nothing else.

Every object (the `flux install --export` controllers, the flux-system Secrets, the sync objects)
goes out as ``PATCH`` with ``Content-Type: application/apply-patch+yaml``, ``fieldManager=kubevc``
and ``force=true``; the stand-in API answers a create (POST) or replace (PUT) with 405 and a wrong
content type with 415, as the contract the old create-or-replace code broke.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from kubevc.nodeprep.fluxsync import (
    apply_flux_manifests,
    apply_flux_sync,
    apply_secret,
    git_credentials_secret,
)
from kubevc.nodeprep.kubeapi import APPLY_PATCH, FIELD_MANAGER

from ..kubeapi import make_pki
from .kubeapi import BEARER, FakeKubeApi, operator_kubeconfig
from .test_flux_handover_api_contract import TOKEN, flux_install_export
from .test_fluxsync_api_contract import SYNC


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, object, bytes]]:
    from kubernetes.config import new_client_from_config

    pki = make_pki(tmp_path)
    with FakeKubeApi(pki) as server:
        kubeconfig = operator_kubeconfig(tmp_path / "kc", server.url, pki.ca_pem, "seoul")
        yield server, new_client_from_config(config_file=str(kubeconfig), context="seoul"), pki.ca_pem


def test_every_write_is_a_forced_apply_by_kubevc(
    api: tuple[FakeKubeApi, object, bytes], shared_dir: Path
) -> None:
    server, client, _ = api
    apply_flux_manifests(client, flux_install_export(shared_dir), poll=0.01)
    apply_secret(client, git_credentials_secret(token=TOKEN))
    apply_flux_sync(client, SYNC)
    writes = [r for r in server.state.requests if r.method != "GET"]
    # ensure_namespace's create of flux-system (POST /api/v1/namespaces) is the one non-apply write
    applies = [r for r in writes if not (r.method == "POST" and r.path == "/api/v1/namespaces")]
    assert len(applies) >= 8  # namespace, CRDs, controllers, the Secret, the two sync objects
    for request in applies:
        assert request.method == "PATCH", request.path
        assert request.content_type == APPLY_PATCH
        assert parse_qs(urlsplit(request.path).query) == {"fieldManager": [FIELD_MANAGER], "force": ["true"]}
    kustomization = server.state.custom["kustomize.toolkit.fluxcd.io/kustomizations/flux-system/flux-system"]
    assert kustomization["metadata"]["managedFields"][0]["manager"] == "kubevc"


def test_the_stand_in_holds_the_contract(api: tuple[FakeKubeApi, object, bytes]) -> None:
    server, _, ca_pem = api
    context = ssl.create_default_context(cadata=ca_pem.decode())
    path = "/api/v1/namespaces/flux-system/secrets/x"
    body = b'{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "flux-system"}}'

    def send(method: str, query: str, content_type: str) -> int:
        request = urllib.request.Request(
            f"{server.url}{path}{query}",
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {BEARER}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, context=context) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return error.code

    applied = "?fieldManager=kubevc&force=true"
    assert send("PATCH", applied, "application/merge-patch+json") == 415
    assert send("PATCH", applied, "application/json") == 415
    assert send("PATCH", "?force=true", APPLY_PATCH) == 400
    assert send("PUT", "", "application/json") == 405
    assert send("PATCH", applied, APPLY_PATCH) == 201
    assert send("PATCH", "?fieldManager=someone-else", APPLY_PATCH) == 409  # not forced
    assert send("PATCH", applied, APPLY_PATCH) == 200
