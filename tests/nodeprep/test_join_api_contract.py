"""Agent-mediated join against a local HTTPS server speaking the Kubernetes API paths it uses.

The real ``kubernetes`` client talks TLS to the contract server (its CA generated here with
``cryptography``); the node side is a recording runner here and the real pyinfra runner against
a chroot with a stand-in ``kubeadm`` in ``test_join_through_pyinfra_chroot``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pyinfra.api.command import StringCommand

from kubevc.nodeprep.join import (
    JoinError,
    JoinRequest,
    core_api_for_context,
    join_node,
    kubeadm_ca_cert_hash,
    node_preflight,
    pyinfra_join_runner,
)
from kubevc.nodeprep.plans.inventory import accelerator_labels
from kubevc.nodeprep.testing import chroot_target

from ..kubeapi import Pki, make_pki
from .kubeapi import FakeKubeApi, operator_kubeconfig


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def api(pki: Pki) -> Iterator[FakeKubeApi]:
    with FakeKubeApi(pki) as server:
        yield server


@pytest.fixture
def core(api: FakeKubeApi, pki: Pki, tmp_path: Path) -> object:
    kubeconfig = operator_kubeconfig(tmp_path / "kubeconfig", api.url, pki.ca_pem, "seoul")
    return core_api_for_context(str(kubeconfig), "seoul")


def request(distribution: str = "kubeadm", **overrides: object) -> JoinRequest:
    values: dict[str, object] = {
        "region": "seoul",
        "distribution": distribution,
        "api_endpoint": "https://10.8.0.1:6443",
        "node_name": "seoul-pi-2",
        "ready_timeout": 5.0,
        "poll_interval": 0.05,
    }
    values.update(overrides)
    return JoinRequest(**values)  # type: ignore[arg-type]


class RecordingRunner:
    """Stands for the node: records each command and checks the token is live while it runs."""

    def __init__(self, api: FakeKubeApi, results: list[bool]) -> None:
        self.api = api
        self.results = results
        self.raw: list[str] = []
        self.masked: list[str] = []
        self.live_secrets: list[list[str]] = []

    def __call__(self, command: StringCommand) -> bool:
        self.raw.append(command.get_raw_value())
        self.masked.append(str(command))
        self.live_secrets.append(sorted(self.api.state.secrets))
        ok = self.results.pop(0)
        if ok:
            self.api.state.ready_nodes.add("seoul-pi-2")
        return ok


def decoded(secret: dict[str, object]) -> dict[str, str]:
    data = secret["data"]
    assert isinstance(data, dict)
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


# --- the join against the API ---------------------------------------------------------------------


def test_join_api_contract_kubeadm_success(
    api: FakeKubeApi,
    core: object,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = RecordingRunner(api, [True])
    progress: list[str] = []
    result = join_node(core, request(), runner, progress=progress.append)
    assert result.joined and result.ready and result.attempts == 1

    [body] = api.state.created
    name = body["metadata"]["name"]
    assert re.fullmatch(r"bootstrap-token-[a-z0-9]{6}", name)
    assert body["metadata"]["namespace"] == "kube-system"
    assert body["type"] == "bootstrap.kubernetes.io/token"
    fields = decoded(body)
    assert fields["token-id"] == name.removeprefix("bootstrap-token-")
    assert re.fullmatch(r"[a-z0-9]{16}", fields["token-secret"])
    assert fields["usage-bootstrap-authentication"] == "true"
    assert fields["usage-bootstrap-signing"] == "true"
    assert fields["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
    expires = dt.datetime.strptime(fields["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert dt.timedelta(0) < expires - api.state.created_at[name] < dt.timedelta(seconds=60)

    # the token existed while the node joined, and is gone afterwards
    assert runner.live_secrets == [[name]]
    assert api.state.deleted == [name] and api.state.secrets == {}
    token = f"{fields['token-id']}.{fields['token-secret']}"
    assert runner.raw == [
        f"kubeadm join 10.8.0.1:6443 --token {token} "
        f"--discovery-token-ca-cert-hash {kubeadm_ca_cert_hash(pki.ca_pem)} --node-name seoul-pi-2"
    ]
    assert fields["token-secret"] not in runner.masked[0] and "*MASKED*" in runner.masked[0]

    out = capsys.readouterr()
    everything = "\n".join([out.out, out.err, caplog.text, *progress, repr(result)])
    assert fields["token-secret"] not in everything
    assert any("Ready" in line for line in progress)
    methods = [r.method for r in api.state.requests if "secrets" in r.path]
    assert methods == ["POST", "DELETE"]


def test_join_api_contract_failed_join_still_deletes(api: FakeKubeApi, core: object) -> None:
    runner = RecordingRunner(api, [False, False])
    with pytest.raises(JoinError, match="did not join") as raised:
        join_node(core, request(attempts=2), runner)
    names = [b["metadata"]["name"] for b in api.state.created]
    assert len(names) == 2 and names[0] != names[1]  # the retry minted a fresh token
    assert api.state.deleted == names and api.state.secrets == {}
    assert [len(s) for s in runner.live_secrets] == [1, 1]
    for body in api.state.created:
        assert decoded(body)["token-secret"] not in str(raised.value)


def test_join_api_contract_runner_exception_still_deletes(api: FakeKubeApi, core: object) -> None:
    def exploding(command: StringCommand) -> bool:
        raise ConnectionResetError("ssh connection dropped")

    with pytest.raises(ConnectionResetError):
        join_node(core, request(), exploding)
    assert len(api.state.created) == 1 and api.state.secrets == {}
    assert api.state.deleted == [api.state.created[0]["metadata"]["name"]]


def test_join_api_contract_k3s_token(api: FakeKubeApi, core: object, pki: Pki) -> None:
    runner = RecordingRunner(api, [True])
    join_node(core, request("k3s"), runner)
    [body] = api.state.created
    fields = decoded(body)
    assert fields["auth-extra-groups"] == "system:bootstrappers:k3s:default-node-token"
    secure = f"K10{hashlib.sha256(pki.ca_pem).hexdigest()}::{fields['token-id']}.{fields['token-secret']}"
    raw = runner.raw[0]
    assert f"K3S_TOKEN={secure}" in raw
    assert "K3S_URL=https://10.8.0.1:6443" in raw and "INSTALL_K3S_EXEC=agent" in raw
    assert "K3S_NODE_NAME=seoul-pi-2" in raw
    assert raw.endswith("INSTALL_K3S_SKIP_DOWNLOAD=true sh /var/lib/kubevc/k3s-install.sh")
    assert secure not in runner.masked[0]
    assert api.state.secrets == {}


def test_join_api_contract_refuses_member_and_missing_cluster_info(api: FakeKubeApi, core: object) -> None:
    api.state.registered_nodes.add("seoul-pi-2")
    with pytest.raises(JoinError, match="already a member"):
        join_node(core, request(), RecordingRunner(api, [True]))
    api.state.registered_nodes.clear()
    api.state.cluster_info = False
    with pytest.raises(JoinError, match="cluster-info"):
        join_node(core, request(), RecordingRunner(api, [True]))
    assert api.state.created == []  # nothing minted when the preflight fails


def test_join_api_contract_not_ready_in_time(api: FakeKubeApi, core: object) -> None:
    def joins_but_never_ready(command: StringCommand) -> bool:
        api.state.registered_nodes.add("seoul-pi-2")
        return True

    result = join_node(core, request(ready_timeout=0.2), joins_but_never_ready)
    assert result.joined and not result.ready
    assert api.state.secrets == {}


def test_missing_context_is_a_clear_error(api: FakeKubeApi, pki: Pki, tmp_path: Path) -> None:
    kubeconfig = operator_kubeconfig(tmp_path / "kc", api.url, pki.ca_pem, "busan")
    with pytest.raises(JoinError, match="no context 'seoul'"):
        core_api_for_context(str(kubeconfig), "seoul")


def test_unauthorised_client_mints_nothing(api: FakeKubeApi, pki: Pki, tmp_path: Path) -> None:
    kubeconfig = operator_kubeconfig(tmp_path / "kc", api.url, pki.ca_pem, "seoul")
    kubeconfig.write_text(kubeconfig.read_text().replace("operator-test-token", "wrong-token"))
    with pytest.raises(JoinError, match="HTTP 401"):
        join_node(core_api_for_context(str(kubeconfig), "seoul"), request(), RecordingRunner(api, [True]))
    assert api.state.created == []


# --- through pyinfra, against a real root ---------------------------------------------------------

STUB_KUBEADM = """#!/bin/sh
# stand-in for kubeadm: records its arguments and exits as the test asks
echo "$@" > /var/lib/kubevc-test-kubeadm-args
mkdir -p /etc/kubernetes
exit $(cat /var/lib/kubevc-test-kubeadm-exit)
"""


@pytest.mark.chroot
@pytest.mark.slow
@pytest.mark.parametrize("exit_code", [0, 1])
def test_join_through_pyinfra_chroot(
    fresh_root: Callable[[Path | None], Path],
    api: FakeKubeApi,
    core: object,
    pki: Pki,
    exit_code: int,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    root = fresh_root(None)
    stub = root / "usr/local/bin/kubeadm"
    stub.write_text(STUB_KUBEADM)
    stub.chmod(0o755)
    (root / "var/lib/kubevc-test-kubeadm-exit").write_text(f"{exit_code}\n")
    target = chroot_target(root)
    node_preflight(target, request())
    runner = pyinfra_join_runner(target)

    def node_side(command: StringCommand) -> bool:
        ok = runner(command)
        if ok:
            api.state.ready_nodes.add("seoul-pi-2")
        return ok

    if exit_code == 0:
        result = join_node(core, request(attempts=1), node_side)
        assert result.joined and result.ready
    else:
        with pytest.raises(JoinError):
            join_node(core, request(attempts=1), node_side)
    [body] = api.state.created
    fields = decoded(body)
    assert api.state.secrets == {} and api.state.deleted == [body["metadata"]["name"]]
    args = (root / "var/lib/kubevc-test-kubeadm-args").read_text().split()
    assert args[:2] == ["join", "10.8.0.1:6443"]
    assert args[args.index("--token") + 1] == f"{fields['token-id']}.{fields['token-secret']}"
    assert args[args.index("--discovery-token-ca-cert-hash") + 1] == kubeadm_ca_cert_hash(pki.ca_pem)
    out = capsys.readouterr()
    assert fields["token-secret"] not in out.out + out.err + caplog.text
    # the stand-in made /etc/kubernetes; a real join leaves kubelet.conf, which preflight refuses
    (root / "etc/kubernetes/kubelet.conf").write_text("apiVersion: v1\n")
    with pytest.raises(JoinError, match="already a cluster member"):
        node_preflight(target, request())


def test_join_api_contract_labels_after_ready(api: FakeKubeApi, core: object) -> None:
    labels = (("zone", "a"), ("kubevc.io/region", "seoul"))
    join_node(core, request(labels=labels), RecordingRunner(api, [True]))
    assert api.state.node_labels == {"seoul-pi-2": {"zone": "a", "kubevc.io/region": "seoul"}}
    patches = [r.path for r in api.state.requests if r.method == "PATCH"]
    assert patches == ["/api/v1/nodes/seoul-pi-2"]


def test_join_api_contract_accelerator_labels(api: FakeKubeApi, core: object) -> None:
    """`node join` adds kubevc.io/accelerator and kubevc.io/arch (from the node's inventory) to the
    operator's labels; the stand-in API records them on the Node once it is Ready."""
    labels = {"zone": "a", **accelerator_labels(["coral"], "armhf")}
    join_node(core, request(labels=tuple(sorted(labels.items()))), RecordingRunner(api, [True]))
    assert api.state.node_labels == {
        "seoul-pi-2": {"zone": "a", "kubevc.io/accelerator": "coral", "kubevc.io/arch": "arm"}
    }
