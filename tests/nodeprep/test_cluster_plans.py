"""cluster init plans against the documented k3s and kubeadm contracts (the binaries cannot run here).

The plans are pure (kubevc.nodeprep.plans); the fact and operations that apply them are tested in
test_facts and test_operations_live.
"""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from kubevc.nodeprep.plans.cluster import ClusterParams
from kubevc.nodeprep.plans.k3s import K3S_INSTALLER_REMOTE, k3s_plan
from kubevc.nodeprep.plans.kubeadm import KUBEADM_CONFIG_PATH, kubeadm_config, kubeadm_init_command


def params(**overrides: object) -> ClusterParams:
    values: dict[str, object] = {
        "region": "seoul",
        "distribution": "k3s",
        "api_endpoint": "https://10.8.0.1:6443",
        "cluster_name": "seoul",
        "pod_cidr": "10.42.0.0/16",
        "service_cidr": "10.43.0.0/16",
        "node_name": "seoul-pi-1",
    }
    values.update(overrides)
    return ClusterParams(**values)  # type: ignore[arg-type]


def test_k3s_server_args_contract() -> None:
    plan = k3s_plan(params(extra_sans=("seoul.vpn.example", "10.8.0.1")))
    args = list(plan.server_args)
    assert args[0] == "server"
    pairs = list(zip(args[1::2], args[2::2], strict=True))
    assert ("--cluster-cidr", "10.42.0.0/16") in pairs
    assert ("--service-cidr", "10.43.0.0/16") in pairs
    assert ("--node-name", "seoul-pi-1") in pairs
    assert ("--flannel-backend", "vxlan") in pairs
    # --tls-san is repeatable; the endpoint host comes first and duplicates are dropped
    assert [v for k, v in pairs if k == "--tls-san"] == ["10.8.0.1", "seoul.vpn.example"]
    assert all(k.startswith("--") for k, _ in pairs)


def test_k3s_config_file_contract() -> None:
    """config.yaml keys are the server flag names without the leading dashes."""
    plan = k3s_plan(params(flannel_backend="wireguard-native", advertise_address="192.168.1.10"))
    config = yaml.safe_load(plan.config_yaml())
    assert config == {
        "node-name": "seoul-pi-1",
        "cluster-cidr": "10.42.0.0/16",
        "service-cidr": "10.43.0.0/16",
        "tls-san": ["10.8.0.1"],
        "flannel-backend": "wireguard-native",
        "write-kubeconfig-mode": "0600",
        "advertise-address": "192.168.1.10",
    }
    flags = {a[2:] for a in plan.server_args if a.startswith("--")}
    assert flags == set(config)


def test_k3s_install_env_contract() -> None:
    online = k3s_plan(params(k3s_version="v1.30.8+k3s1"))
    assert online.install_env == {"INSTALL_K3S_VERSION": "v1.30.8+k3s1", "INSTALL_K3S_EXEC": "server"}
    assert online.install_command().startswith("curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=")
    assert online.install_command().endswith("sh -s -")
    airgap = k3s_plan(params(k3s_binary="/srv/k3s-arm64", k3s_installer="/srv/install.sh"))
    assert airgap.airgap and airgap.install_env["INSTALL_K3S_SKIP_DOWNLOAD"] == "true"
    assert airgap.install_command().endswith(f"sh {K3S_INSTALLER_REMOTE}")
    assert "curl" not in airgap.install_command()
    with pytest.raises(ValueError, match="install script"):
        k3s_plan(params(k3s_binary="/srv/k3s"))


def test_kubeadm_config_contract() -> None:
    cfg = kubeadm_config(
        params(
            distribution="kubeadm",
            api_endpoint="https://seoul.vpn.example:16443",
            cluster_name="seoul-prod",
            pod_cidr="10.244.0.0/16",
            service_cidr="10.96.0.0/12",
            advertise_address="192.168.1.10",
        )
    )
    docs = list(yaml.safe_load_all(cfg.to_yaml()))
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("kubeadm.k8s.io/v1beta4", "InitConfiguration"),
        ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"),
        ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
    ]
    init, cluster, kubelet = docs
    assert cluster["clusterName"] == "seoul-prod"
    assert cluster["controlPlaneEndpoint"] == "seoul.vpn.example:16443"
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12"}
    assert cluster["apiServer"]["certSANs"] == ["seoul.vpn.example"]
    assert cluster["kubernetesVersion"].startswith("v1.")
    assert init["nodeRegistration"] == {
        "name": "seoul-pi-1",
        "criSocket": "unix:///run/containerd/containerd.sock",
    }
    assert init["localAPIEndpoint"] == {"advertiseAddress": "192.168.1.10"}
    # the init-time token expires within a minute; joins mint their own
    [token] = init["bootstrapTokens"]
    assert token["ttl"] == "1m0s" and "token" not in token
    assert set(token["usages"]) == {"signing", "authentication"}
    assert token["groups"] == ["system:bootstrappers:kubeadm:default-node-token"]
    assert kubelet["cgroupDriver"] == "systemd"
    ipaddress.ip_network(cluster["networking"]["podSubnet"])
    assert kubeadm_init_command() == f"kubeadm init --config {KUBEADM_CONFIG_PATH} --skip-token-print"


def test_endpoint_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        _ = params(api_endpoint="10.8.0.1:6443").endpoint_host
    assert params(api_endpoint="https://[fd00::1]:6443").endpoint_host == "fd00::1"
    assert params(api_endpoint="https://api.example").endpoint_port == 6443
