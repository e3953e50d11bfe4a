"""Run pyinfra operations through its Python API and report, per host and operation, what changed.

Inventories are built from plain :class:`Target` values (the generator turns region.yaml nodes
into them), so there is no second inventory file to keep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory
from pyinfra.api.operations import run_ops
from pyinfra.api.state import State
from pyinfra.context import ctx_host, ctx_state

__all__ = ["HostDeploy", "OpOutcome", "RunReport", "Target", "pyinfra_session", "run_deploy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One node to reach: an SSH host, or a pyinfra connector name (``@chroot/DIR``, ``@local``)."""

    name: str
    ssh_user: str | None = None
    ssh_port: int | None = None
    ssh_key: str | None = None

    def host_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.ssh_user:
            data["ssh_user"] = self.ssh_user
            if self.ssh_user != "root":
                data["_sudo"] = True
        if self.ssh_port:
            data["ssh_port"] = self.ssh_port
        if self.ssh_key:
            data["ssh_key"] = self.ssh_key
        return data


@dataclass(frozen=True)
class OpOutcome:
    host: str
    name: str
    changed: bool
    success: bool | None  # None: not executed (dry run, or the host failed earlier)


@dataclass
class RunReport:
    dry_run: bool
    outcomes: list[OpOutcome] = field(default_factory=list)
    failed_hosts: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_hosts and all(o.success is not False for o in self.outcomes)

    def changed(self, host: str | None = None) -> list[OpOutcome]:
        return [o for o in self.outcomes if o.changed and (host is None or o.host == host)]

    def outcome(self, host: str, name: str) -> OpOutcome:
        for item in self.outcomes:
            if item.host == host and item.name == name:
                return item
        raise KeyError(f"no operation {name!r} on {host}")


# A host deploy adds operations for one host (inside pyinfra's host context) and may return
# messages for the operator (e.g. "reboot deferred").
HostDeploy = Callable[[State, Host], list[str] | None]


@contextmanager
def pyinfra_session(targets: Iterable[Target], *, check_for_changes: bool = True) -> Iterator[State]:
    """A connected pyinfra State for the targets (disconnected on exit)."""
    names_data = [(t.name, t.host_data()) for t in targets]
    inventory = Inventory((names_data, {}))  # type: ignore[no-untyped-call]
    config = Config()  # type: ignore[no-untyped-call]
    state = State(inventory=inventory, config=config, check_for_changes=check_for_changes)
    try:
        connect_all(state)
    except PyinfraError:
        failed = sorted(h.name for h in state.failed_hosts) or [h.name for h in inventory]
        raise ConnectionError(f"could not connect to {', '.join(failed)}") from None
    try:
        yield state
    finally:
        disconnect_all(state)


def _collect(state: State, report: RunReport) -> None:
    for host in state.inventory:
        ops = state.ops.get(host, {})
        for op_hash in host.op_hash_order:
            data = ops.get(op_hash)
            if data is None:
                continue
            name = ", ".join(sorted(state.op_meta[op_hash].names))
            meta = data.operation_meta
            if meta.is_complete():
                report.outcomes.append(OpOutcome(host.name, name, meta.did_change(), meta.did_succeed()))
            else:
                report.outcomes.append(OpOutcome(host.name, name, bool(meta.will_change), None))
    report.failed_hosts = sorted(h.name for h in state.failed_hosts)


def run_deploy(targets: Iterable[Target], deploy: HostDeploy, *, dry_run: bool = False) -> RunReport:
    """Add the deploy's operations for every target, then run them (unless ``dry_run``).

    In a dry run pyinfra still reads facts (read-only commands) to tell which operations would
    change something; nothing is executed.
    """
    report = RunReport(dry_run=dry_run)
    with pyinfra_session(targets) as state:
        with ctx_state.use(state):
            for host in list(state.inventory.get_active_hosts()):
                with ctx_host.use(host):
                    try:
                        messages = deploy(state, host)
                    except (PyinfraError, ValueError) as error:
                        report.messages.append(f"{host.name}: {error}")
                        state.failed_hosts.add(host)
                        state.active_hosts.discard(host)
                        continue
                    report.messages.extend(f"{host.name}: {m}" for m in messages or [])
        if not dry_run and state.active_hosts:
            try:
                run_ops(state)
            except PyinfraError as error:
                report.messages.append(str(error))
        _collect(state, report)
    return report
