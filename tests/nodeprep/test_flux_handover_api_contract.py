"""`cluster init --flux-sync` hands a bare cluster to Flux: controllers, credentials, sync.

Against the local Kubernetes API stand-in (tests/nodeprep/kubeapi.py): the output of
``flux install --export`` is applied first and its CRDs waited for, then the ``flux-system`` git
credentials Secret and the ``sops-age`` Secret, then gotk-sync.yaml. Secret values reach the API
and nothing else: no progress line, no error, no captured output.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubevc.generator.cli import cli
from kubevc.generator.cli._node import _flux_sync, _read_handover
from kubevc.nodeprep.fluxsync import (
    FluxSyncError,
    age_key_secret,
    apply_flux_manifests,
    apply_flux_sync,
    apply_secret,
    git_credentials_secret,
)

from ..kubeapi import make_pki
from .kubeapi import FakeKubeApi, operator_kubeconfig
from .test_fluxsync_api_contract import SYNC

DEPLOY_KEY = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    b"ZGVwbG95LWtleS1wbGFpbnRleHQtN2E2Yg==\n"
    b"-----END OPENSSH PRIVATE KEY-----\n"
)
KNOWN_HOSTS = b"git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheGitServer\n"
TOKEN = b"ghp_tokenPl41ntext0123456789\n"
AGE_KEY = (
    b"# public key: age1example\nAGE-SECRET-KEY-1PL41NTEXTAGEKEY0000000000000000000000000000000000000000\n"
)
SECRET_TEXTS = ("ZGVwbG95LWtleS1wbGFpbnRleHQtN2E2Yg", "ghp_tokenPl41ntext", "AGE-SECRET-KEY-1PL41NTEXT")


def flux_install_export(shared_dir: Path) -> str:
    """A `flux install --export`-shaped stream: namespace, the upstream CRDs, a controller."""
    parts = ["apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"]
    for crd in (
        "source.toolkit.fluxcd.io_gitrepositories.yaml",
        "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    ):
        parts.append((shared_dir / "crds" / crd).read_text(encoding="utf-8"))
    parts.append(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n"
        "  name: source-controller\n  namespace: flux-system\n"
    )
    parts.append(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: source-controller\n"
        "  namespace: flux-system\nspec:\n  replicas: 1\n"
    )
    # the controllers come after the CRDs in flux's output too, but the order must not matter
    return "---\n".join([parts[-1], *parts[:-1]])


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, object, Path]]:
    from kubernetes.config import new_client_from_config

    pki = make_pki(tmp_path)
    with FakeKubeApi(pki) as server:
        kubeconfig = operator_kubeconfig(tmp_path / "kc", server.url, pki.ca_pem, "seoul")
        yield server, new_client_from_config(config_file=str(kubeconfig), context="seoul"), kubeconfig


def test_controllers_first_then_credentials_then_sync(
    api: tuple[FakeKubeApi, object, Path], shared_dir: Path
) -> None:
    server, client, _ = api
    said: list[str] = []
    server.state.crd_gets_until_established = 2  # the CRDs take a moment: the apply waits
    installed = apply_flux_manifests(client, flux_install_export(shared_dir), poll=0.01, progress=said.append)
    assert installed.applied[0] == "Namespace flux-system (exists)" or installed.applied[0].startswith(
        "Namespace"
    )
    kinds = [a.split()[0] for a in installed.applied]
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment")
    assert server.state.served_groups == {"source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io"}
    assert "/apis/apps/v1/namespaces/flux-system/deployments/source-controller" in server.state.objects
    said.append(apply_secret(client, git_credentials_secret(ssh_key=DEPLOY_KEY, known_hosts=KNOWN_HOSTS)))
    said.append(apply_secret(client, age_key_secret(AGE_KEY), progress=said.append))
    stored = server.state.objects["/api/v1/namespaces/flux-system/secrets/flux-system"]
    assert base64.b64decode(stored["data"]["identity"]) == DEPLOY_KEY
    assert base64.b64decode(stored["data"]["known_hosts"]) == KNOWN_HOSTS
    age = server.state.objects["/api/v1/namespaces/flux-system/secrets/sops-age"]
    assert base64.b64decode(age["data"]["age.agekey"]) == AGE_KEY
    synced = apply_flux_sync(client, SYNC)
    assert synced.applied[0] == "GitRepository flux-system/flux-system (created)"
    # again: everything is replaced in place (a token this time)
    again = apply_flux_manifests(client, flux_install_export(shared_dir), poll=0.01)
    assert all(a.endswith("(configured)") for a in again.applied)
    said.append(apply_secret(client, git_credentials_secret(token=TOKEN)))
    stored = server.state.objects["/api/v1/namespaces/flux-system/secrets/flux-system"]
    assert base64.b64decode(stored["data"]["password"]) == TOKEN.strip()
    assert base64.b64decode(stored["data"]["username"]) == b"git"
    assert said[-1] == "Secret flux-system/flux-system (configured)"
    for text in SECRET_TEXTS:
        assert not any(text in line for line in said)


def test_crds_never_established_is_a_clear_error(
    api: tuple[FakeKubeApi, object, Path], shared_dir: Path
) -> None:
    server, client, _ = api
    server.state.crd_gets_until_established = 10**9
    with pytest.raises(FluxSyncError, match="CRDs not established after 0 s: gitrepositories"):
        apply_flux_manifests(client, flux_install_export(shared_dir), timeout=0.0, poll=0.01)


def test_unknown_kind_applies_nothing(api: tuple[FakeKubeApi, object, Path], shared_dir: Path) -> None:
    server, client, _ = api
    text = flux_install_export(shared_dir) + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n"
    with pytest.raises(FluxSyncError, match="unexpected kind 'Pod'"):
        apply_flux_manifests(client, text)
    assert server.state.objects == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ssh_key": DEPLOY_KEY}, "known_hosts"),
        ({"ssh_key": DEPLOY_KEY, "known_hosts": KNOWN_HOSTS, "token": TOKEN}, "either"),
        ({}, "either"),
        ({"ssh_key": b"not a key", "known_hosts": KNOWN_HOSTS}, "does not hold a private key"),
        ({"token": b"\n"}, "empty"),
    ],
)
def test_bad_git_credentials(kwargs: dict[str, bytes], message: str) -> None:
    with pytest.raises(FluxSyncError, match=message) as caught:
        git_credentials_secret(**kwargs)
    assert not any(t in str(caught.value) for t in SECRET_TEXTS)


def test_cli_handover_reads_files_and_applies_in_order(
    api: tuple[FakeKubeApi, object, Path],
    shared_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _, kubeconfig = api
    files = {
        "manifests": flux_install_export(shared_dir).encode(),
        "key": DEPLOY_KEY,
        "hosts": KNOWN_HOSTS,
        "age": AGE_KEY,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "gotk-sync.yaml").write_text(SYNC)
    handover = _read_handover(
        True, tmp_path / "manifests", tmp_path / "key", tmp_path / "hosts", None, tmp_path / "age"
    )
    _flux_sync(kubeconfig, "seoul", tmp_path / "gotk-sync.yaml", handover)
    out = capsys.readouterr()
    assert "Flux controllers applied on seoul" in out.out
    assert (
        "Secret flux-system/flux-system (created)" in out.out
        and "Secret flux-system/sops-age (created)" in out.out
    )
    assert "Flux sync applied on seoul" in out.out
    assert "kustomize.toolkit.fluxcd.io/kustomizations/flux-system/flux-system" in server.state.custom
    for text in SECRET_TEXTS:
        assert text not in out.out and text not in out.err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--git-ssh-key", "KEY"], "go with --flux-sync"),
        (["--flux-sync", "--git-ssh-key", "KEY"], "known_hosts"),
        (
            ["--flux-sync", "--git-token-file", "/nonexistent/token"],
            "--git-token-file /nonexistent/token: cannot read",
        ),
        (["--flux-sync", "--age-key-file", "KEY"], "AGE-SECRET-KEY-1"),
        (["--flux-sync", "--git-known-hosts", "KEY"], "goes with --git-ssh-key"),
    ],
)
def test_cluster_init_bad_handover_input_is_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    key = tmp_path / "deploy-key"
    key.write_bytes(DEPLOY_KEY)
    root = tmp_path / "fleet"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(root)]).exit_code == 0
    add = [
        "region",
        "add",
        "seoul",
        "--api-endpoint",
        "https://10.8.0.1:6443",
        "--nfs-server",
        "n",
        "--nfs-path",
        "/m",
    ]
    assert runner.invoke(cli, ["--fleet", str(root), *add]).exit_code == 0
    args = [str(key) if a == "KEY" else a for a in extra]
    result = runner.invoke(
        cli, ["--fleet", str(root), "cluster", "init", "seoul", *args], prog_name="kubevc-gen"
    )
    assert result.exit_code == 5, result.output  # bad input (2 is click usage only)
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not any(t in result.output for t in SECRET_TEXTS)


class _FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_crd_wait_honours_its_timeout_and_names_the_missing_crds(
    api: tuple[FakeKubeApi, object, Path], shared_dir: Path
) -> None:
    server, client, _ = api
    server.state.crd_gets_until_established = 10**9  # this stand-in never establishes a CRD
    clock = _FakeClock()
    with pytest.raises(FluxSyncError) as caught:
        apply_flux_manifests(
            client, flux_install_export(shared_dir), timeout=7.5, poll=2.0, clock=clock, sleep=clock.sleep
        )
    message = str(caught.value)
    assert message.startswith("CRDs not established after 7.5 s: ")
    assert "gitrepositories.source.toolkit.fluxcd.io" in message
    assert "kustomizations.kustomize.toolkit.fluxcd.io" in message
    assert clock.slept == [2.0, 2.0, 2.0, 1.5]  # polls every 2 s, the last sleep ends at the deadline
    assert clock.now == 1007.5


def test_cluster_init_crd_timeout_reaches_the_wait(
    api: tuple[FakeKubeApi, object, Path],
    shared_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _, kubeconfig = api
    server.state.crd_gets_until_established = 10**9
    (tmp_path / "manifests").write_text(flux_install_export(shared_dir))
    (tmp_path / "gotk-sync.yaml").write_text(SYNC)
    handover = _read_handover(True, tmp_path / "manifests", None, None, None, None)
    with pytest.raises(SystemExit) as exited:
        _flux_sync(kubeconfig, "seoul", tmp_path / "gotk-sync.yaml", handover, crd_timeout=0.2)
    assert exited.value.code == 1
    assert (
        "CRDs not established after 0.2 s: gitrepositories.source.toolkit.fluxcd.io"
        in capsys.readouterr().err
    )


def test_crd_timeout_is_a_duration() -> None:
    result = CliRunner().invoke(cli, ["cluster", "init", "seoul", "--crd-timeout", "soon"])
    assert result.exit_code == 2
    assert "'soon' is not a duration such as 10s, 500ms or 2m" in result.output
