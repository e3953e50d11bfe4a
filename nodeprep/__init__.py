"""kubevc.nodeprep: pyinfra operations and facts for node preparation, cluster init and join.

The names below are the package's public API, what ``kubevc-gen node ...``/``cluster ...`` use.
The layers behind them, each importing only the ones below it
(docs/architecture.md, "Node preparation's layers"):

* tasks: :mod:`.prepare`, :mod:`.cluster`, :mod:`.join`, :mod:`.fluxsync`;
* :mod:`.runner` (pyinfra sessions and reports) and :mod:`.kubeapi` (every kube API call);
* :mod:`.operations`, then :mod:`.facts` (pyinfra's pairing);
* pure: :mod:`.plans` (k3s, kubeadm, bootstrap token, CA pinning, join, Flux sync),
  :mod:`.platform`, :mod:`.texts`, and :mod:`.kubeconfig` (merge, one atomic file write);
* :mod:`.errors`, one base :class:`NodeprepError`.

:mod:`.testing` (a debootstrap'd root for pyinfra's ``@chroot`` connector) is test support and is
not imported here.
"""

from .cluster import init_cluster
from .errors import FluxSyncError, JoinError, KubeconfigError, NodeprepError, UnsupportedPlatformError
from .fluxsync import FluxSyncResult, apply_flux_sync
from .join import (
    JoinResult,
    join_node,
    node_preflight,
    pyinfra_join_runner,
    read_inventory,
    stage_k3s_agent,
)
from .kubeapi import core_api_for_context
from .kubeconfig import MergeResult, default_kubeconfig_path, merge_kubeconfig, merge_kubeconfig_file
from .plans.cluster import DEFAULT_K3S_VERSION, DEFAULT_KUBERNETES_VERSION, ClusterParams
from .plans.flux_sync import parse_sync_manifests
from .plans.inventory import Inventory, accelerator_labels
from .plans.join import JoinRequest
from .plans.k3s import K3sPlan, k3s_plan
from .plans.kubeadm import KubeadmConfig, kubeadm_config
from .platform import Platform, Runtime
from .prepare import PrepareOptions, prepare_nodes
from .runner import OpOutcome, RunReport, Target, pyinfra_session, run_deploy

__all__ = [
    "DEFAULT_K3S_VERSION",
    "DEFAULT_KUBERNETES_VERSION",
    "ClusterParams",
    "FluxSyncError",
    "FluxSyncResult",
    "Inventory",
    "JoinError",
    "JoinRequest",
    "JoinResult",
    "K3sPlan",
    "KubeadmConfig",
    "KubeconfigError",
    "MergeResult",
    "NodeprepError",
    "OpOutcome",
    "Platform",
    "PrepareOptions",
    "RunReport",
    "Runtime",
    "Target",
    "UnsupportedPlatformError",
    "accelerator_labels",
    "apply_flux_sync",
    "core_api_for_context",
    "default_kubeconfig_path",
    "init_cluster",
    "join_node",
    "k3s_plan",
    "kubeadm_config",
    "merge_kubeconfig",
    "merge_kubeconfig_file",
    "node_preflight",
    "parse_sync_manifests",
    "prepare_nodes",
    "pyinfra_join_runner",
    "pyinfra_session",
    "read_inventory",
    "run_deploy",
    "stage_k3s_agent",
]
