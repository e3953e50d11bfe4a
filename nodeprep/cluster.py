"""``cluster init``: install k3s or kubeadm on the region's server node, then fetch its kubeconfig.

The plans live in :mod:`kubevc.nodeprep.plans.k3s` and :mod:`kubevc.nodeprep.plans.kubeadm`, the
operations that apply them (``k3s_server``, ``kubeadm_server``) in :mod:`kubevc.nodeprep.operations`;
this task runs them through the runner and hands the admin kubeconfig on.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from pyinfra.api.host import Host
from pyinfra.api.state import State

from .facts import NodePlatform
from .operations import k3s_server, kubeadm_server
from .plans.cluster import DEFAULT_K3S_VERSION, DEFAULT_KUBERNETES_VERSION, ClusterParams
from .plans.k3s import K3S_CONFIG_PATH, K3S_KUBECONFIG, K3sPlan, k3s_plan
from .plans.kubeadm import KUBEADM_CONFIG_PATH, KUBEADM_KUBECONFIG, KubeadmConfig, kubeadm_config
from .runner import RunReport, Target, pyinfra_session, run_deploy

# The plan names stay importable from here, where `kubevc-gen cluster init` has always found them.
__all__ = [
    "DEFAULT_K3S_VERSION",
    "DEFAULT_KUBERNETES_VERSION",
    "K3S_CONFIG_PATH",
    "K3S_KUBECONFIG",
    "KUBEADM_CONFIG_PATH",
    "KUBEADM_KUBECONFIG",
    "ClusterParams",
    "K3sPlan",
    "KubeadmConfig",
    "fetch_admin_kubeconfig",
    "init_cluster",
    "k3s_plan",
    "kubeadm_config",
]


def fetch_admin_kubeconfig(state: State, target_host: Host, distribution: str) -> str:
    """Read the admin kubeconfig from the server node (never logged)."""
    remote = K3S_KUBECONFIG if distribution == "k3s" else KUBEADM_KUBECONFIG
    buffer = io.BytesIO()
    sudo = bool(getattr(target_host.data, "_sudo", False))
    if not target_host.get_file(remote, buffer, _sudo=sudo):
        raise RuntimeError(f"could not read {remote} on {target_host.name}")
    return buffer.getvalue().decode()


def init_cluster(
    target: Target,
    params: ClusterParams,
    *,
    dry_run: bool = False,
    on_kubeconfig: Callable[[str], None] | None = None,
) -> RunReport:
    """Install the server and hand its admin kubeconfig to ``on_kubeconfig`` (not in a dry run)."""

    def deploy(state: State, target_host: Host) -> list[str]:
        platform = target_host.get_fact(NodePlatform)
        platform.check_supported()
        if params.distribution == "k3s":
            k3s_server(params=params, name=f"kubevc: k3s server {params.k3s_version}")
        else:
            kubeadm_server(params=params, name=f"kubevc: kubeadm init {params.kubernetes_version}")
        return [f"{params.distribution} server on {platform.pretty_name} {platform.architecture}"]

    report = run_deploy([target], deploy, dry_run=dry_run)
    if dry_run or not report.ok or on_kubeconfig is None:
        return report
    with pyinfra_session([target]) as state:
        server_host = next(iter(state.inventory))
        on_kubeconfig(fetch_admin_kubeconfig(state, server_host, params.distribution))
    return report
