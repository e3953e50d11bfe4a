"""Can pyinfra authenticate to a node at all? Checked before any SSH session is opened.

A node added without ``--ssh-key`` relies on an SSH agent or a default key; with neither, pyinfra
fails deep inside its connector (a gevent traceback). :func:`ssh_auth_problem` says so in one
line instead, naming the node and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..spec import NodeSpec

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa", "id_ed25519_sk", "id_ecdsa_sk")


def _is_ssh(host: str) -> bool:
    return not host.startswith("@") or host.startswith("@ssh/")


def ssh_auth_problem(region: str, node: NodeSpec) -> str | None:
    """One line when ``node`` (an SSH target) has no usable key, agent or default key; else None."""
    if not _is_ssh(node.host):
        return None
    fix = f"`kubevc-gen region set {region} nodes[N].sshKey=PATH` or load the key into ssh-agent"
    if node.ssh_key:
        key = Path(os.path.expanduser(node.ssh_key))
        if not key.is_file():
            return f"node {node.host} of region {region}: sshKey {node.ssh_key} does not exist; {fix}"
        return None
    agent = os.environ.get("SSH_AUTH_SOCK", "")
    if agent and Path(agent).exists():
        return None
    ssh_dir = Path.home() / ".ssh"
    if any((ssh_dir / name).is_file() for name in DEFAULT_KEYS) or (ssh_dir / "config").is_file():
        return None
    return (
        f"node {node.host} of region {region} has no sshKey, and there is no SSH agent "
        f"(SSH_AUTH_SOCK) or default key in {ssh_dir}; {fix} (or `node add ... --ssh-key PATH`)"
    )
