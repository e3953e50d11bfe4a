"""``node join``, agent-mediated: the node never holds a long-lived secret.

The task sequences the layers below it: before any token exists the k3s agent is staged and the
node is checked (pyinfra, read-only facts); then, per attempt, a bootstrap token is minted
(:mod:`~kubevc.nodeprep.plans.bootstrap_token`) and created on the region's API
(:mod:`~kubevc.nodeprep.kubeapi`), the CA-pinned join command
(:mod:`~kubevc.nodeprep.plans.join`, :mod:`~kubevc.nodeprep.plans.ca_pinning`) is handed to the
node over SSH (pyinfra, :func:`~kubevc.nodeprep.operations.run_join`), the task waits for the Node
to be Ready and deletes the token in a ``finally`` — also when the join failed.

The token secret is held in :class:`Token` whose ``repr``/``str`` are masked, is passed to pyinfra
as a ``HiddenValue`` (pyinfra prints ``*MASKED*``) and is never logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api.command import StringCommand
from pyinfra.api.host import Host
from pyinfra.api.state import State

from . import kubeapi
from .errors import JoinError
from .facts import FileBytes, NodeInventory, NodePlatform
from .kubeapi import core_api_for_context
from .operations import k3s_agent_staged, masked_command, run_join
from .plans.bootstrap_token import (
    DEFAULT_TTL_SECONDS,
    MAX_TTL_SECONDS,
    Token,
    bootstrap_token_secret,
    mint_token,
)
from .plans.ca_pinning import (
    ca_bundle_from_cluster_info,
    k3s_ca_hash,
    k3s_secure_token,
    kubeadm_ca_cert_hash,
)
from .plans.inventory import Inventory
from .plans.join import JoinRequest, join_command_words, member_marker
from .plans.k3s import K3S_INSTALLER_URL, K3S_RELEASES
from .runner import RunReport, Target, run_deploy

# The token and CA-pinning names stay importable from here, where kubevc-gen and the tests have
# always found them.
__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MAX_TTL_SECONDS",
    "JoinError",
    "JoinRequest",
    "JoinResult",
    "JoinRunner",
    "Token",
    "bootstrap_token_secret",
    "ca_bundle_from_cluster_info",
    "core_api_for_context",
    "join_command",
    "join_node",
    "k3s_ca_hash",
    "k3s_secure_token",
    "kubeadm_ca_cert_hash",
    "mint_token",
    "node_preflight",
    "pyinfra_join_runner",
    "read_inventory",
    "stage_k3s_agent",
]


@dataclass
class JoinResult:
    node_name: str
    joined: bool
    ready: bool
    attempts: int
    messages: list[str] = field(default_factory=list)


def join_command(request: JoinRequest, token: Token, ca_bundle: bytes) -> StringCommand:
    """The command run on the node; the secret parts are HiddenValues (pyinfra masks them)."""
    return masked_command(join_command_words(request, token, ca_bundle))


# --- the node side, through pyinfra ---------------------------------------------------------------


def stage_k3s_agent(
    target: Target,
    version: str,
    *,
    dry_run: bool = False,
    releases: str = K3S_RELEASES,
    installer_url: str = K3S_INSTALLER_URL,
) -> RunReport:
    """Before any token exists: put the pinned k3s binary and installer on the node."""

    def deploy(state: State, node: Host) -> None:
        k3s_agent_staged(
            version=version,
            releases=releases,
            installer_url=installer_url,
            name=f"kubevc: stage k3s {version}",
        )

    return run_deploy([target], deploy, dry_run=dry_run)


def node_preflight(target: Target, request: JoinRequest) -> list[str]:
    """Reachable? supported? already a member? (read-only facts; raises JoinError)."""
    found: dict[str, Any] = {}

    def deploy(state: State, node: Host) -> None:
        found["platform"] = node.get_fact(NodePlatform)
        found["kubelet_conf"] = node.get_fact(FileBytes, path="/etc/kubernetes/kubelet.conf")
        found["k3s_agent"] = node.get_fact(FileBytes, path="/etc/systemd/system/k3s-agent.service")

    try:
        report = run_deploy([target], deploy, dry_run=True)
    except ConnectionError as error:
        raise JoinError(f"{target.name} is not reachable ({error})") from None
    if not report.ok or "platform" not in found:
        raise JoinError(f"{target.name}: preflight failed: {'; '.join(report.messages)}")
    found["platform"].check_supported()
    if found["kubelet_conf"] is not None or found["k3s_agent"] is not None:
        raise JoinError(f"{target.name} is already a cluster member ({member_marker(request.distribution)})")
    return report.messages


def read_inventory(target: Target) -> Inventory:
    """The node's inventory, read now (read-only facts), for a node `node prepare` has not recorded."""
    found: dict[str, Inventory] = {}

    def deploy(state: State, node: Host) -> None:
        found["inventory"] = node.get_fact(NodeInventory)

    report = run_deploy([target], deploy, dry_run=True)
    if "inventory" not in found:
        raise JoinError(f"{target.name}: cannot read the node's inventory: {'; '.join(report.messages)}")
    return found["inventory"]


JoinRunner = Callable[[StringCommand], bool]


def pyinfra_join_runner(target: Target) -> JoinRunner:
    def run(command: StringCommand) -> bool:
        def deploy(state: State, node: Host) -> None:
            run_join(command=command, name="kubevc: join the cluster")

        report: RunReport = run_deploy([target], deploy)
        return report.ok

    return run


# --- the join -------------------------------------------------------------------------------------


def join_node(
    core: Any,
    request: JoinRequest,
    runner: JoinRunner,
    *,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JoinResult:
    """Mint, pin, join, wait, and always delete the token. ``core`` is a ``CoreV1Api``."""
    say = progress or (lambda message: None)
    if kubeapi.node_registered(core, request.region, request.node_name):
        raise JoinError(f"node {request.node_name} is already a member of {request.region}")
    ca_bundle = kubeapi.cluster_ca_bundle(core, request.region)
    result = JoinResult(node_name=request.node_name, joined=False, ready=False, attempts=0)

    for attempt in range(1, request.attempts + 1):
        result.attempts = attempt
        token = mint_token(request.ttl_seconds)
        say(f"minted bootstrap token {token.token_id} (expires {token.expires:%H:%M:%S} UTC)")
        kubeapi.create_token_secret(core, token, request.distribution)
        try:
            say(
                f"joining {request.node_name} to {request.region} ({request.distribution}), attempt {attempt}"
            )
            if runner(join_command(request, token, ca_bundle)):
                result.joined = True
                result.ready = _wait_ready(core, request, say, sleep)
                if result.ready and request.labels:
                    kubeapi.label_node(core, request.node_name, dict(request.labels))
                    say(f"labelled {request.node_name}: {', '.join(f'{k}={v}' for k, v in request.labels)}")
                break
            result.messages.append(f"join attempt {attempt} failed on the node")
        finally:
            if kubeapi.delete_token_secret(core, token):
                say(f"deleted bootstrap token {token.token_id}")
            else:
                say(f"bootstrap token {token.token_id} already gone")
    if not result.joined:
        raise JoinError(
            f"{request.node_name} did not join {request.region} after {result.attempts} attempt(s)"
        )
    return result


def _wait_ready(
    core: Any, request: JoinRequest, say: Callable[[str], None], sleep: Callable[[float], None]
) -> bool:
    deadline = time.monotonic() + request.ready_timeout
    while True:
        ready = kubeapi.node_ready(core, request.node_name)
        if ready:
            say(f"node {request.node_name} is Ready")
            return True
        if ready is None:
            say(f"waiting for {request.node_name} to register")
        else:
            say(f"waiting for {request.node_name} to be Ready")
        if time.monotonic() >= deadline:
            say(f"{request.node_name} not Ready after {request.ready_timeout:.0f} s")
            return False
        sleep(request.poll_interval)
