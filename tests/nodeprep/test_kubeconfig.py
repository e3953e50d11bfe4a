"""Merging a cluster's admin kubeconfig into the operator's kubeconfig (real files in tmp dirs)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from kubevc.nodeprep.kubeconfig import (
    KubeconfigError,
    default_kubeconfig_path,
    merge_kubeconfig,
    merge_kubeconfig_file,
)

CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmZha2UKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
K3S_ADMIN = f"""\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {CA}
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: Q0xJRU5UQ0VSVA==
    client-key-data: U0VDUkVUS0VZREFUQQ==
"""
KUBEADM_ADMIN = f"""\
apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    certificate-authority-data: {CA}
    server: https://192.168.1.10:6443
contexts:
- name: kubernetes-admin@kubernetes
  context: {{cluster: kubernetes, user: kubernetes-admin}}
current-context: kubernetes-admin@kubernetes
users:
- name: kubernetes-admin
  user: {{client-certificate-data: QUJD, client-key-data: S0VZQUJD}}
"""
OPERATOR = """\
apiVersion: v1
kind: Config
clusters:
- name: busan
  cluster: {server: https://10.9.0.1:6443, certificate-authority-data: QlVTQU4=}
users:
- name: busan-admin
  user: {token: busan-token}
contexts:
- name: busan
  context: {cluster: busan, user: busan-admin, namespace: kubevc}
current-context: busan
"""


def test_k3s_admin_into_new_file(tmp_path: Path) -> None:
    path = tmp_path / "kube" / "config"
    result = merge_kubeconfig_file(path, K3S_ADMIN, "seoul", "https://10.8.0.1:6443")
    data = yaml.safe_load(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert data["contexts"] == [{"name": "seoul", "context": {"cluster": "seoul", "user": "seoul-admin"}}]
    assert data["clusters"][0] == {
        "name": "seoul",
        "cluster": {"certificate-authority-data": CA, "server": "https://10.8.0.1:6443"},
    }
    assert data["users"][0]["user"]["client-key-data"] == "U0VDUkVUS0VZREFUQQ=="
    assert data["current-context"] == "seoul"
    assert (result.context, result.user, result.replaced) == ("seoul", "seoul-admin", False)


def test_merge_keeps_other_contexts_and_current(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(OPERATOR)
    path.chmod(0o644)
    merge_kubeconfig_file(path, KUBEADM_ADMIN, "seoul", "https://seoul.vpn.example:6443")
    data = yaml.safe_load(path.read_text())
    assert [c["name"] for c in data["contexts"]] == ["busan", "seoul"]
    assert data["contexts"][0] == yaml.safe_load(OPERATOR)["contexts"][0]
    assert data["users"][0] == {"name": "busan-admin", "user": {"token": "busan-token"}}
    assert data["current-context"] == "busan"
    seoul = data["clusters"][1]["cluster"]
    assert seoul["server"] == "https://seoul.vpn.example:6443"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_remerge_replaces_only_the_region(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(OPERATOR)
    merge_kubeconfig_file(path, K3S_ADMIN, "seoul", "https://10.8.0.1:6443")
    first = path.read_text()
    result = merge_kubeconfig_file(path, K3S_ADMIN, "seoul", "https://10.8.0.1:6443")
    assert result.replaced
    assert path.read_text() == first  # idempotent
    merge_kubeconfig_file(path, K3S_ADMIN, "seoul", "https://10.8.0.2:6443")
    data = yaml.safe_load(path.read_text())
    assert [c["name"] for c in data["clusters"]] == ["busan", "seoul"]
    assert data["clusters"][1]["cluster"]["server"] == "https://10.8.0.2:6443"


def test_merge_result_never_carries_credentials() -> None:
    _, result = merge_kubeconfig(None, K3S_ADMIN, "seoul", "https://10.8.0.1:6443")
    text = repr(result)
    for secret in ("U0VDUkVUS0VZREFUQQ==", "Q0xJRU5UQ0VSVA==", CA):
        assert secret not in text


@pytest.mark.parametrize(
    ("admin", "message"),
    [
        ("- just\n- a list\n", "not a kubeconfig mapping"),
        ("clusters: []\nusers: []\n", "exactly one cluster"),
        (
            "clusters: [{name: a, cluster: {server: https://x}}]\nusers: [{name: u, user: {}}]\n",
            "no certificate authority",
        ),
        ("clusters: {a: 1}\n", "list of named entries"),
        ("{unclosed", "not valid YAML"),
    ],
)
def test_bad_admin_kubeconfig(admin: str, message: str) -> None:
    with pytest.raises(KubeconfigError, match=message):
        merge_kubeconfig(None, admin, "seoul", "https://10.8.0.1:6443")


def test_bad_operator_kubeconfig_leaves_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("[not, a, mapping]\n")
    with pytest.raises(KubeconfigError):
        merge_kubeconfig_file(path, K3S_ADMIN, "seoul", "https://10.8.0.1:6443")
    assert path.read_text() == "[not, a, mapping]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/a:{tmp_path}/b")
    assert default_kubeconfig_path() == tmp_path / "a"
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_kubeconfig_path() == tmp_path / ".kube" / "config"
