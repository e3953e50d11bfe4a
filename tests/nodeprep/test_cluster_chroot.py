"""cluster init through pyinfra against a real Debian root, with stand-ins for the k3s files.

The real k3s binary and installer cannot run in a chroot; the stand-ins record exactly what the
documented installer contract hands them (environment, paths), print a pinned version, and write
the admin kubeconfig where k3s writes it, so the whole operator flow runs for real around them.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kubevc.nodeprep import testing
from kubevc.nodeprep.cluster import ClusterParams, init_cluster
from kubevc.nodeprep.kubeconfig import merge_kubeconfig_file
from kubevc.nodeprep.testing import chroot_target

from .test_kubeconfig import K3S_ADMIN

pytestmark = [pytest.mark.chroot, pytest.mark.slow]

STUB_K3S = "#!/bin/sh\necho 'k3s version v1.31.4+k3s1 (stub)'\necho 'go version go1.22.9'\n"
STUB_INSTALLER = """#!/bin/sh
set -e
env | grep '^INSTALL_K3S_' | sort > /var/lib/kubevc/installer-env
mkdir -p /etc/rancher/k3s
cat > /etc/rancher/k3s/k3s.yaml <<'EOF'
{admin}EOF
chmod 600 /etc/rancher/k3s/k3s.yaml
"""


def stub_files(tmp_path: Path, admin: str = K3S_ADMIN) -> tuple[Path, Path, Path]:
    binary = tmp_path / "k3s"
    binary.write_text(STUB_K3S)
    installer = tmp_path / "install.sh"
    installer.write_text(STUB_INSTALLER.format(admin=admin))
    images = tmp_path / "k3s-airgap-images-arm64.tar.zst"
    images.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(range(256)) * 64)
    return binary, installer, images


def test_k3s_airgap_install_contract(fresh_root: Callable[[Path | None], Path], tmp_path: Path) -> None:
    root = fresh_root(None)
    binary, installer, images = stub_files(tmp_path)
    params = ClusterParams(
        region="seoul",
        distribution="k3s",
        api_endpoint="https://10.8.0.1:6443",
        cluster_name="seoul",
        pod_cidr="10.42.0.0/16",
        service_cidr="10.43.0.0/16",
        node_name="seoul-pi-1",
        k3s_binary=str(binary),
        k3s_installer=str(installer),
        k3s_images=str(images),
    )
    fetched: list[str] = []

    dry = init_cluster(chroot_target(root), params, dry_run=True, on_kubeconfig=fetched.append)
    assert dry.ok and [o.changed for o in dry.outcomes] == [True]
    assert not (root / "etc/rancher/k3s/config.yaml").exists() and fetched == []

    report = init_cluster(chroot_target(root), params, on_kubeconfig=fetched.append)
    assert report.ok, report.messages
    assert [o.changed for o in report.outcomes] == [True]

    config = yaml.safe_load((root / "etc/rancher/k3s/config.yaml").read_text())
    assert config["tls-san"] == ["10.8.0.1"] and config["cluster-cidr"] == "10.42.0.0/16"
    assert stat.S_IMODE((root / "etc/rancher/k3s/config.yaml").stat().st_mode) == 0o600
    assert (root / "usr/local/bin/k3s").read_text() == STUB_K3S
    assert stat.S_IMODE((root / "usr/local/bin/k3s").stat().st_mode) == 0o755
    placed = root / "var/lib/rancher/k3s/agent/images" / images.name
    assert placed.read_bytes() == images.read_bytes()
    env = (root / "var/lib/kubevc/installer-env").read_text().splitlines()
    assert env == [
        "INSTALL_K3S_EXEC=server",
        "INSTALL_K3S_SKIP_DOWNLOAD=true",
        "INSTALL_K3S_VERSION=v1.31.4+k3s1",
    ]
    assert fetched == [K3S_ADMIN]

    # the fetched kubeconfig lands in the operator's kubeconfig under the region's context
    operator = tmp_path / "operator-config"
    merge_kubeconfig_file(operator, fetched[0], params.region, params.api_endpoint)
    merged = yaml.safe_load(operator.read_text())
    assert merged["contexts"][0]["name"] == "seoul"
    assert merged["clusters"][0]["cluster"]["server"] == "https://10.8.0.1:6443"

    # second run: the pinned version is installed and every file matches, so nothing changes
    before = testing.tree_digest(root)
    again = init_cluster(chroot_target(root), params)
    assert again.ok and [o.changed for o in again.outcomes] == [False]
    assert testing.tree_digest(root) == before


STUB_KUBEADM_INIT = """#!/bin/sh
# stand-in for kubeadm init: records its arguments and writes the admin kubeconfig
echo "$@" >> /var/lib/kubevc-test-kubeadm-calls
mkdir -p /etc/kubernetes
cat > /etc/kubernetes/admin.conf <<'EOF'
{admin}EOF
"""


def test_kubeadm_init_contract(fresh_root: Callable[[Path | None], Path], tmp_path: Path) -> None:
    from .test_kubeconfig import KUBEADM_ADMIN

    root = fresh_root(None)
    stub = root / "usr/local/bin/kubeadm"
    stub.write_text(STUB_KUBEADM_INIT.format(admin=KUBEADM_ADMIN))
    stub.chmod(0o755)
    params = ClusterParams(
        region="busan",
        distribution="kubeadm",
        api_endpoint="https://10.9.0.1:6443",
        cluster_name="busan",
        pod_cidr="10.244.0.0/16",
        service_cidr="10.96.0.0/12",
        node_name="busan-cp-1",
    )
    fetched: list[str] = []
    report = init_cluster(chroot_target(root), params, on_kubeconfig=fetched.append)
    assert report.ok and [o.changed for o in report.outcomes] == [True], report.messages
    calls = (root / "var/lib/kubevc-test-kubeadm-calls").read_text().splitlines()
    assert calls == ["init --config /etc/kubevc/kubeadm-config.yaml --skip-token-print"]
    docs = list(yaml.safe_load_all((root / "etc/kubevc/kubeadm-config.yaml").read_text()))
    cluster = next(d for d in docs if d["kind"] == "ClusterConfiguration")
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"}
    assert cluster["controlPlaneEndpoint"] == "10.9.0.1:6443" and cluster["clusterName"] == "busan"
    assert stat.S_IMODE((root / "etc/kubevc/kubeadm-config.yaml").stat().st_mode) == 0o600
    assert fetched == [KUBEADM_ADMIN]
    # an existing control plane is never initialised again
    again = init_cluster(chroot_target(root), params)
    assert again.ok and [o.changed for o in again.outcomes] == [False]
    assert len((root / "var/lib/kubevc-test-kubeadm-calls").read_text().splitlines()) == 1
