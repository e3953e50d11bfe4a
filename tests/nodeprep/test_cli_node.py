"""`kubevc-gen node ...` / `cluster ...` through the real CLI, real git fleet repos and real roots.

Nodes named ``@chroot/DIR`` are pyinfra's chroot connector, so the same commands that reach a
Raspberry Pi over SSH run here against a debootstrap'd Debian root.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from kubevc.generator.cli import cli
from kubevc.nodeprep import testing

from ..kubeapi import make_pki
from .kubeapi import FakeKubeApi, operator_kubeconfig
from .test_cluster_chroot import stub_files
from .test_join_api_contract import STUB_KUBEADM

FreshRoot = Callable[[Path | None], Path]


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def run(*args: str, fleet: Path | None = None) -> Result:
    full = (["--fleet", str(fleet)] if fleet else []) + list(args)
    return CliRunner().invoke(cli, full, prog_name="kubevc-gen", catch_exceptions=False)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "fleet"
    assert run("init", str(root)).exit_code == 0
    for args in (
        ["region", "add", "seoul", "--api-endpoint", "https://10.8.0.1:6443", "--arch", "amd64",
         "--nfs-server", "10.8.0.10", "--nfs-path", "/export/models"],
        ["region", "add", "busan", "--api-endpoint", "https://10.9.0.1:6443", "--distribution", "kubeadm",
         "--arch", "amd64", "--nfs-server", "10.9.0.10", "--nfs-path", "/export/models"],
    ):  # fmt: skip
        result = run(*args, fleet=root)
        assert result.exit_code == 0, result.output
    yield root


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize(
    "command",
    [["node", "add"], ["node", "prepare"], ["node", "join"], ["cluster", "init"]],
)
def test_help_has_an_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"kubevc-gen {' '.join(command)} " in result.output


def test_node_add_records_and_commits_once(fleet: Path) -> None:
    before = git(fleet, "rev-parse", "HEAD").strip()
    result = run("node", "add", "seoul", "10.8.0.11", "--role", "server", "--ssh-user", "pi",
                 "--ssh-port", "2222", "--ssh-key", "~/.ssh/edge", "--labels", "zone=a,tier=edge",
                 "--labels", "gpu=none", fleet=fleet)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert git(fleet, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert git(fleet, "log", "-1", "--format=%s").strip() == "node add seoul 10.8.0.11 (server)"
    assert git(fleet, "show", "--name-only", "--format=", "HEAD").split() == ["regions/seoul/region.yaml"]
    spec = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
    assert spec["nodes"] == [
        {
            "host": "10.8.0.11",
            "role": "server",
            "sshUser": "pi",
            "sshPort": 2222,
            "sshKey": "~/.ssh/edge",
            "labels": {"zone": "a", "tier": "edge", "gpu": "none"},
        }
    ]
    assert git(fleet, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["node", "add", "nowhere", "h1"], "region 'nowhere' not found"),
        (["node", "add", "seoul", "h1", "--ssh-port", "70000"], "sshPort"),
        (["node", "add", "seoul", "h1", "--labels", "novalue"], "expected KEY=VALUE"),
        (["node", "prepare", "seoul"], "has no nodes"),
        (["node", "prepare", "seoul", "ghost"], "'ghost' is not a node of region seoul"),
        (["node", "join", "seoul", "ghost"], "'ghost' is not a node of region seoul"),
        (["cluster", "init", "seoul"], "exactly one node with role server"),
    ],
)
def test_bad_input_changes_nothing(fleet: Path, args: list[str], message: str) -> None:
    before = (tree(fleet), git(fleet, "rev-parse", "HEAD"))
    result = CliRunner().invoke(cli, ["--fleet", str(fleet), *args], prog_name="kubevc-gen")
    assert result.exit_code == 5, result.output
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1
    assert (tree(fleet), git(fleet, "rev-parse", "HEAD")) == before


def test_duplicate_host_and_unreachable_node(fleet: Path, tmp_path: Path) -> None:
    key = tmp_path / "id_test"  # a key file, so the connection itself is what fails
    key.write_text("not a real key\n")
    added = run("node", "add", "seoul", "127.0.0.1", "--ssh-port", "1", "--ssh-key", str(key), fleet=fleet)
    assert added.exit_code == 0
    again = CliRunner().invoke(cli, ["--fleet", str(fleet), "node", "add", "seoul", "127.0.0.1"])
    assert again.exit_code == 5 and "already a node of region seoul" in again.output
    prepared = CliRunner().invoke(cli, ["--fleet", str(fleet), "node", "prepare", "seoul", "--dry-run"])
    assert prepared.exit_code == 1
    assert "error: could not connect to 127.0.0.1" in prepared.output


# --- against real roots ---------------------------------------------------------------------------


@pytest.mark.chroot
@pytest.mark.slow
def test_node_prepare_dry_run_on_a_root(fleet: Path, fresh_root: FreshRoot) -> None:
    root = fresh_root(None)
    assert run("node", "add", "seoul", f"@chroot{root}", fleet=fleet).exit_code == 0
    before = testing.tree_digest(root)
    result = run("node", "prepare", "seoul", "--dry-run", fleet=fleet)
    assert result.exit_code == 0, result.output
    assert "kubevc: node packages: would change" in result.output
    assert "dry run:" in result.output
    assert testing.tree_digest(root) == before


@pytest.mark.chroot
@pytest.mark.slow
def test_cluster_init_and_join_flow(fleet: Path, fresh_root: FreshRoot, tmp_path: Path) -> None:
    """k3s air-gapped server for seoul; kubeadm agent join for busan against the contract API."""
    server_root = fresh_root(None)
    binary, installer, images = stub_files(tmp_path)
    assert (
        run("node", "add", "seoul", f"@chroot{server_root}", "--role", "server", fleet=fleet).exit_code == 0
    )
    kubeconfig = tmp_path / "operator" / "config"
    common = ["--kubeconfig", str(kubeconfig), "--k3s-binary", str(binary), "--k3s-installer", str(installer),
              "--k3s-images", str(images)]  # fmt: skip
    dry = run("cluster", "init", "seoul", "--dry-run", *common, fleet=fleet)
    assert dry.exit_code == 0, dry.output
    assert "would change" in dry.output and not kubeconfig.exists()
    real = run("cluster", "init", "seoul", *common, fleet=fleet)
    assert real.exit_code == 0, real.output
    assert "context seoul added" in real.output
    merged = yaml.safe_load(kubeconfig.read_text())
    assert merged["contexts"][0]["name"] == "seoul"
    assert merged["clusters"][0]["cluster"]["server"] == "https://10.8.0.1:6443"
    assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
    assert "client-key-data" not in real.output and "U0VDUkVUS0VZREFUQQ" not in real.output

    # busan (kubeadm): join an agent through the CLI; the API is the contract server
    agent_root = fresh_root(None)
    stub = agent_root / "usr/local/bin/kubeadm"
    stub.write_text(STUB_KUBEADM)
    stub.chmod(0o755)
    (agent_root / "var/lib/kubevc-test-kubeadm-exit").write_text("0\n")
    host = f"@chroot{agent_root}"
    assert run("node", "add", "busan", host, fleet=fleet).exit_code == 0
    pki = make_pki(tmp_path)
    with FakeKubeApi(pki) as api:
        api.state.ready_check = lambda name: (agent_root / "var/lib/kubevc-test-kubeadm-args").exists()
        busan_kc = operator_kubeconfig(tmp_path / "busan-kubeconfig", api.url, pki.ca_pem, "busan")
        missing = CliRunner().invoke(
            cli, ["--fleet", str(fleet), "node", "join", "busan", host, "--kubeconfig", str(kubeconfig)]
        )
        assert missing.exit_code == 1 and "has no context 'busan'" in missing.output
        dry_join = run("node", "join", "busan", host, "--dry-run", "--kubeconfig", str(busan_kc), fleet=fleet)
        assert dry_join.exit_code == 0, dry_join.output
        assert api.state.created == [] and "nothing changed" in dry_join.output
        joined = run("node", "join", "busan", host, "--kubeconfig", str(busan_kc), fleet=fleet)
        assert joined.exit_code == 0, joined.output
        [body] = api.state.created
        assert api.state.secrets == {}
        secret = body["data"]["token-secret"]
    import base64

    plain = base64.b64decode(secret).decode()
    assert plain not in joined.output and secret not in joined.output
    assert "is Ready; the bootstrap token is deleted" in joined.output
    args = (agent_root / "var/lib/kubevc-test-kubeadm-args").read_text().split()
    assert args[:2] == ["join", "10.9.0.1:6443"]
    assert os.path.basename(str(agent_root)) in args[args.index("--node-name") + 1]


@pytest.mark.chroot
@pytest.mark.slow
def test_cluster_init_hands_over_to_flux(fleet: Path, fresh_root: FreshRoot, tmp_path: Path) -> None:
    """The region's API is the contract server: init, merge the kubeconfig, apply gotk-sync.yaml."""
    pki = make_pki(tmp_path)
    with FakeKubeApi(pki) as api:
        added = run("region", "add", "daegu", "--api-endpoint", api.url, "--arch", "amd64",
                    "--nfs-server", "nas", "--nfs-path", "/m", fleet=fleet)  # fmt: skip
        assert added.exit_code == 0, added.output
        admin = operator_kubeconfig(tmp_path / "admin", "https://127.0.0.1:6443", pki.ca_pem, "default")
        binary, installer, _images = stub_files(tmp_path, admin.read_text())
        root = fresh_root(None)
        assert run("node", "add", "daegu", f"@chroot{root}", "--role", "server", fleet=fleet).exit_code == 0
        kubeconfig = tmp_path / "operator-config"
        args = ["cluster", "init", "daegu", "--flux-sync", "--kubeconfig", str(kubeconfig), "--k3s-binary",
                str(binary), "--k3s-installer", str(installer)]  # fmt: skip
        no_flux = CliRunner().invoke(cli, ["--fleet", str(fleet), *args], prog_name="kubevc-gen")
        assert no_flux.exit_code == 1, no_flux.output
        assert "error: flux sync: " in no_flux.output and "install the Flux controllers" in no_flux.output
        assert "context daegu added" in no_flux.output  # the cluster itself is there
        api.state.served_groups = {"source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io"}
        again = run(*args, fleet=fleet)
        assert again.exit_code == 0, again.output
        assert "context daegu replaced" in again.output and "Flux sync applied on daegu" in again.output
        kustomization = api.state.custom["kustomize.toolkit.fluxcd.io/kustomizations/flux-system/flux-system"]
        assert kustomization["spec"]["path"] == "./clusters/daegu"
        assert "flux-system" in api.state.namespaces


@pytest.mark.chroot
@pytest.mark.slow
def test_k3s_join_dry_run_stages_nothing(fleet: Path, fresh_root: FreshRoot, tmp_path: Path) -> None:
    root = fresh_root(None)
    host = f"@chroot{root}"
    assert run("node", "add", "seoul", host, "--labels", "zone=b", fleet=fleet).exit_code == 0
    pki = make_pki(tmp_path)
    before = testing.tree_digest(root)
    with FakeKubeApi(pki) as api:
        kubeconfig = operator_kubeconfig(tmp_path / "kc", api.url, pki.ca_pem, "seoul")
        result = run("node", "join", "seoul", host, "--dry-run", "--kubeconfig", str(kubeconfig), fleet=fleet)
        assert result.exit_code == 0, result.output
        assert "kubevc: stage k3s v1.31.4+k3s1: would change" in result.output
        assert "nothing changed" in result.output
        assert api.state.created == [] and not [r for r in api.state.requests if r.method != "GET"]
    assert testing.tree_digest(root) == before


@pytest.mark.chroot
@pytest.mark.slow
def test_prepare_refuses_an_architecture_the_region_does_not_list(fleet: Path, fresh_root: FreshRoot) -> None:
    root = fresh_root(None)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    other = "armhf" if arch != "armhf" else "arm64"
    assert run("region", "set", "seoul", f"architectures=[{other}]", fleet=fleet).exit_code == 0
    assert run("node", "add", "seoul", f"@chroot{root}", fleet=fleet).exit_code == 0
    before = testing.tree_digest(root)
    result = CliRunner().invoke(
        cli, ["--fleet", str(fleet), "node", "prepare", "seoul"], prog_name="kubevc-gen"
    )
    assert result.exit_code == 1, result.output
    assert f"the node is {arch} but the region lists {other}" in result.output
    assert f"failed hosts: @chroot{root}" in result.output
    assert testing.tree_digest(root) == before
