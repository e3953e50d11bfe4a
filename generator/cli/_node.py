"""``kubevc-gen node ...`` and ``kubevc-gen cluster ...``: nodes of a region, through kubevc.nodeprep.

Order of use: ``node add`` -> ``node prepare`` -> ``cluster init`` -> ``node join``. The region's
``region.yaml`` is the only inventory: pyinfra targets are built from its ``nodes`` list.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from kubevc.nodeprep.cluster import (
    DEFAULT_K3S_VERSION,
    DEFAULT_KUBERNETES_VERSION,
    ClusterParams,
    init_cluster,
    k3s_plan,
)
from kubevc.nodeprep.fluxsync import (
    DEFAULT_CRD_TIMEOUT,
    FluxSyncError,
    age_key_secret,
    apply_flux_manifests,
    apply_flux_sync,
    apply_secret,
    git_credentials_secret,
)
from kubevc.nodeprep.join import (
    JoinError,
    JoinRequest,
    core_api_for_context,
    join_node,
    node_preflight,
    pyinfra_join_runner,
    read_inventory,
    stage_k3s_agent,
)
from kubevc.nodeprep.kubeconfig import KubeconfigError, default_kubeconfig_path, merge_kubeconfig_file
from kubevc.nodeprep.plans.inventory import accelerator_labels
from kubevc.nodeprep.platform import UnsupportedPlatformError
from kubevc.nodeprep.prepare import PrepareOptions, prepare_nodes
from kubevc.nodeprep.runner import RunReport, Target

from .. import workflows
from ..errors import SpecError
from ..repo import dump_roundtrip
from ..spec import NodeSpec, RegionSpec, check_name
from ._common import (
    CONTEXT_SETTINGS,
    EXIT_FINDINGS,
    F,
    change_options,
    context_option,
    fail,
    file_option,
    get_fleet,
    git_options,
    kubeconfig_option_for,
    progress,
    report_change,
)
from ._common import handle_errors as _spec_errors
from ._progress import steps
from ._ssh import ssh_auth_problem
from ._status import parse_duration

_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def handle_errors(func: F) -> F:
    """The generator's spec/git error handling plus the nodeprep errors, each as one line."""
    inner = _spec_errors(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return inner(*args, **kwargs)
        except (UnsupportedPlatformError, KubeconfigError) as exc:
            fail([str(exc)])
        except JoinError as exc:
            fail([str(exc)], EXIT_FINDINGS)
        except ConnectionError as exc:
            fail([str(exc)], EXIT_FINDINGS)
        return None

    return wrapper  # type: ignore[return-value]


def _load(ctx: click.Context, region: str) -> RegionSpec:
    check_name(region)
    fleet = get_fleet(ctx)
    if region not in fleet.region_names():
        raise SpecError(f"region {region!r} not found (no regions/{region}/region.yaml)")
    return fleet.load(region)


def _node(spec: RegionSpec, host: str) -> NodeSpec:
    for node in spec.nodes:
        if node.host == host:
            return node
    known = ", ".join(n.host for n in spec.nodes) or "none yet"
    raise SpecError(f"host {host!r} is not a node of region {spec.name} (nodes: {known}); use `node add`")


def _target(node: NodeSpec) -> Target:
    return Target(name=node.host, ssh_user=node.ssh_user, ssh_port=node.ssh_port, ssh_key=node.ssh_key)


def node_name_for(host: str) -> str:
    """The Kubernetes Node name for a host (DNS-1123 subdomain; other characters become '-')."""
    name = host.lower()
    if not _NODE_NAME.match(name):
        name = re.sub(r"[^a-z0-9.-]+", "-", name).strip("-.") or "node"
    return name


def _server(spec: RegionSpec) -> NodeSpec:
    servers = [n for n in spec.nodes if n.role == "server"]
    if len(servers) != 1:
        raise SpecError(
            f"region {spec.name} needs exactly one node with role server for cluster init "
            f"(found {len(servers)}); add it with `kubevc-gen node add {spec.name} HOST --role server`"
        )
    return servers[0]


def _print_report(report: RunReport) -> None:
    for message in report.messages:
        click.echo(message)
    verb = "would change" if report.dry_run else "changed"
    for outcome in report.outcomes:
        if outcome.success is False:
            state = click.style("FAILED", fg="red")
        elif outcome.changed:
            state = click.style(verb, fg="yellow")
        else:
            state = click.style("ok", fg="green")
        click.echo(f"{outcome.host}: {outcome.name}: {state}")
    changed = len(report.changed())
    summary = f"{len(report.outcomes)} operation(s), {changed} {verb}"
    if report.failed_hosts:
        summary += f", failed hosts: {', '.join(report.failed_hosts)}"
    click.echo(("dry run: " if report.dry_run else "") + summary)


# --------------------------------------------------------------------------- node


@click.group(context_settings=CONTEXT_SETTINGS)
def node() -> None:
    """Nodes of a region: record them, prepare them, join them (pyinfra over SSH).

    \b
    Order: node add -> node prepare -> cluster init -> node join
    """


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            key, sep, val = item.partition("=")
            if not sep or not key:
                raise SpecError(f"--labels {item!r}: expected KEY=VALUE")
            labels[key] = val
    return labels


@node.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("region")
@click.argument("host")
@click.option("--role", type=click.Choice(["server", "agent"]), default="agent", show_default=True)
@click.option("--ssh-user", default="root", show_default=True, help="SSH user (non-root users use sudo).")
@click.option("--ssh-port", type=int, default=22, show_default=True)
@click.option("--ssh-key", default=None, help="Private key file for SSH (default: agent/ssh config).")
@click.option("--labels", "labels", multiple=True, metavar="K=V[,K=V]", help="Node labels (repeatable).")
@git_options
@click.pass_context
@handle_errors
def node_add(
    ctx: click.Context,
    region: str,
    host: str,
    role: str,
    ssh_user: str,
    ssh_port: int,
    ssh_key: str | None,
    labels: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Record HOST as a node of REGION in regions/REGION/region.yaml (one commit).

    \b
    Example:
      kubevc-gen node add seoul 10.8.0.11 --role server --ssh-user pi --labels zone=a
      kubevc-gen node add seoul pi-2.local --ssh-key ~/.ssh/edge --labels zone=a,gpu=none
    """
    options = change_options(branch, no_commit, dry_run)
    spec = _load(ctx, region)
    if any(n.host == host for n in spec.nodes):
        raise SpecError(f"host {host!r} is already a node of region {region}")
    node_data: dict[str, Any] = {
        "host": host,
        "role": role,
        "sshUser": ssh_user,
        "sshPort": ssh_port,
        "labels": _labels(labels),
    }
    if ssh_key:
        node_data["sshKey"] = ssh_key
    report_change(workflows.add_node(get_fleet(ctx), spec, node_data, options))


@node.command("prepare", context_settings=CONTEXT_SETTINGS)
@click.argument("region")
@click.argument("hosts", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Read facts and show what would change; change nothing.")
@click.option("--no-reboot", is_flag=True, help="Do not reboot when cmdline.txt changed (say so instead).")
@click.pass_context
@handle_errors
def node_prepare(
    ctx: click.Context, region: str, hosts: tuple[str, ...], dry_run: bool, no_reboot: bool
) -> None:
    """Prepare the nodes of REGION (all, or the given HOSTs) for k3s/kubeadm.

    Packages, kernel modules, sysctl, swap off, Raspberry Pi cgroups, containerd; idempotent.
    Records each node's inventory (CPU, memory, NVIDIA GPU / Jetson / Coral / Hailo) under
    nodes[].inventory in region.yaml (one commit; --dry-run prints it).

    \b
    Example:
      kubevc-gen node prepare seoul --dry-run
      kubevc-gen node prepare seoul 10.8.0.11 --no-reboot
    """
    spec = _load(ctx, region)
    nodes = [_node(spec, h) for h in hosts] if hosts else list(spec.nodes)
    if not nodes:
        raise SpecError(f"region {region} has no nodes; add one with `kubevc-gen node add {region} HOST`")
    problems = [p for p in (ssh_auth_problem(region, n) for n in nodes) if p]
    if problems:
        raise SpecError(problems)
    inventories: dict[str, dict[str, Any]] = {}  # by host (the pyinfra target's name)
    options = PrepareOptions(
        distribution=spec.distribution,
        reboot=not no_reboot,
        architectures=tuple(spec.architectures),
        on_inventory=lambda host, found: inventories.update({host: found.to_data()}),
    )
    with steps(f"node prepare {region}") as say:
        say(f"preparing {len(nodes)} node(s) of {region} for {spec.distribution}")
        report = prepare_nodes([_target(n) for n in nodes], options, dry_run=dry_run, progress=say)
    _print_report(report)
    if inventories:
        _record_inventory(ctx, spec, inventories, dry_run)
    if not report.ok:
        sys.exit(EXIT_FINDINGS)


def _record_inventory(
    ctx: click.Context, spec: RegionSpec, inventories: dict[str, dict[str, Any]], dry_run: bool
) -> None:
    """The facts node prepare read, into the region spec's ``nodes[].inventory`` (one commit)."""
    if dry_run:
        for host, data in sorted(inventories.items()):
            click.echo(f"inventory of {host}:")
            click.echo(dump_roundtrip({"inventory": data}).rstrip("\n"))
    report_change(
        workflows.record_inventory(get_fleet(ctx), spec, inventories, change_options(None, False, dry_run))
    )


@node.command("join", context_settings=CONTEXT_SETTINGS)
@click.argument("region")
@click.argument("host")
@click.option("--dry-run", is_flag=True, help="Preflight only: no token is minted, nothing changes.")
@kubeconfig_option_for(
    "Operator kubeconfig (default: every file of $KUBECONFIG, or ~/.kube/config).", as_path=True
)
@click.option("--ttl", type=click.IntRange(1, 60), default=45, show_default=True, help="Token lifetime (s).")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Wait for Ready (s).")
@click.option("--airgap", is_flag=True, help="k3s: the binary and installer are already on the node.")
@context_option
@click.pass_context
@handle_errors
def node_join(
    ctx: click.Context,
    region: str,
    host: str,
    dry_run: bool,
    kubeconfig: Path | None,
    ttl: int,
    timeout: float,
    airgap: bool,
    context: str | None,
) -> None:
    """Join HOST to REGION's cluster with a bootstrap token that lives under a minute.

    The token is minted on the region's API, handed to the node over SSH, and deleted right
    after the join (also when it fails). It is never printed.

    \b
    Example:
      kubevc-gen node join seoul 10.8.0.12
      kubevc-gen node join seoul 10.8.0.12 --dry-run
    """
    spec = _load(ctx, region)
    member = _node(spec, host)
    if member.role != "agent":
        raise SpecError(
            f"{host} has role {member.role}; `node join` joins agents (servers use `cluster init`)"
        )
    request = JoinRequest(
        region=region,
        distribution=spec.distribution,
        api_endpoint=spec.api_endpoint,
        node_name=node_name_for(host),
        ttl_seconds=ttl,
        ready_timeout=timeout,
        k3s_airgap=airgap,
        labels=tuple(sorted(member.labels.items())),
    )
    problem = ssh_auth_problem(region, member)
    if problem:
        raise SpecError(problem)
    request = _with_accelerator_labels(request, member)
    # every file of a KUBECONFIG=a:b list (the kubernetes client merges them), like kubectl
    kubeconfig_path = str(kubeconfig or os.environ.get("KUBECONFIG") or default_kubeconfig_path())
    target = _target(member)
    progress(f"preflight {host}")
    for message in node_preflight(target, request):
        click.echo(message)
    core = core_api_for_context(kubeconfig_path, context or spec.effective_kube_context)
    if spec.distribution == "k3s" and not airgap:
        # the download happens before any token exists, so the token lives only through the join
        progress(f"staging k3s {request.k3s_version} on {host}")
        staged = stage_k3s_agent(target, request.k3s_version, dry_run=dry_run)
        _print_report(staged)
        if not staged.ok:
            sys.exit(EXIT_FINDINGS)
    if dry_run:
        click.echo(
            f"dry run: {host} would join {region} as {request.node_name} ({spec.distribution}) with a "
            f"{ttl} s bootstrap token from context {context or spec.effective_kube_context}; nothing changed"
        )
        return
    result = join_node(core, request, pyinfra_join_runner(target), progress=progress)
    for message in result.messages:
        click.echo(message)
    if not result.ready:
        click.secho(f"{request.node_name} joined but is not Ready after {timeout:.0f} s", fg="yellow")
        sys.exit(EXIT_FINDINGS)
    click.echo(f"{request.node_name} joined {region} and is Ready; the bootstrap token is deleted")


def _with_accelerator_labels(request: JoinRequest, member: NodeSpec) -> JoinRequest:
    """``kubevc.io/accelerator`` and ``kubevc.io/arch`` from the node's recorded inventory (read
    from the node when `node prepare` has not recorded one); the operator's own labels win."""
    kinds: list[str]
    arch: str
    if member.inventory is not None:
        kinds, arch = member.inventory.kinds, member.inventory.arch
    else:
        found = read_inventory(_target(member))
        kinds, arch = list(found.kinds), found.architecture
    labels = {**accelerator_labels(kinds, arch), **dict(request.labels)}
    return dataclasses.replace(request, labels=tuple(sorted(labels.items())))


# --------------------------------------------------------------------------- cluster


@click.group(context_settings=CONTEXT_SETTINGS)
def cluster() -> None:
    """The region's cluster: create it on the server node (k3s or kubeadm)."""


@cluster.command("init", context_settings=CONTEXT_SETTINGS)
@click.argument("region")
@click.option("--dry-run", is_flag=True, help="Show what would change on the server node; change nothing.")
@kubeconfig_option_for(
    "Operator kubeconfig to merge into (default: $KUBECONFIG or ~/.kube/config).", as_path=True
)
@click.option("--k3s-version", default=None, help="Pinned k3s release (default: kubevc's pin).")
@click.option(
    "--kubernetes-version", default=None, help="kubeadm: Kubernetes version (default: kubevc's pin)."
)
@click.option("--flannel-backend", default="vxlan", show_default=True, help="k3s: flannel backend.")
@click.option("--cni-manifest", default=None, help="kubeadm: CNI manifest (URL or path on the node).")
@file_option("--k3s-binary", help_text="Air-gap: k3s binary.", exists=True, as_path=False)
@file_option("--k3s-installer", help_text="Air-gap: install.sh.", exists=True, as_path=False)
@file_option("--k3s-images", help_text="Air-gap: images archive.", exists=True, as_path=False)
@click.option(
    "--flux-sync",
    is_flag=True,
    help="Then apply clusters/REGION/flux-system/gotk-sync.yaml (Flux controllers must be installed).",
)
@file_option(
    "--flux-manifests",
    help_text="With --flux-sync: apply this `flux install --export` output first and wait for its CRDs.",
)
@click.option(
    "--crd-timeout",
    metavar="DURATION",
    callback=parse_duration,
    default="2m",
    show_default=True,
    help="With --flux-manifests: how long to wait for the Flux CRDs to be established (10s, 5m...).",
)
@file_option(
    "--git-ssh-key",
    help_text="With --flux-sync: deploy key for the flux-system git Secret (needs --git-known-hosts).",
)
@file_option("--git-known-hosts", help_text="With --git-ssh-key: the git host's known_hosts lines.")
@file_option(
    "--git-token-file",
    help_text="With --flux-sync: file holding an https token for the flux-system git Secret.",
)
@file_option(
    "--age-key-file",
    help_text="With --flux-sync: load this age private key into flux-system as Secret sops-age.",
)
@click.pass_context
@handle_errors
def cluster_init(
    ctx: click.Context,
    region: str,
    dry_run: bool,
    kubeconfig: Path | None,
    k3s_version: str | None,
    kubernetes_version: str | None,
    flannel_backend: str,
    cni_manifest: str | None,
    k3s_binary: str | None,
    k3s_installer: str | None,
    k3s_images: str | None,
    flux_sync: bool,
    flux_manifests: Path | None,
    crd_timeout: float,
    git_ssh_key: Path | None,
    git_known_hosts: Path | None,
    git_token_file: Path | None,
    age_key_file: Path | None,
) -> None:
    """Create REGION's cluster on its server node and add its context to the operator's kubeconfig.

    The admin kubeconfig's server is rewritten to the region's apiEndpoint and merged under the
    context named after the region (other contexts untouched, file mode 0600).

    \b
    Example:
      kubevc-gen cluster init seoul --dry-run
      kubevc-gen cluster init seoul --flux-sync --flux-manifests ./gotk-components.yaml \\
          --git-ssh-key ./deploy-key --git-known-hosts ./known_hosts --age-key-file ~/.age/fleet.agekey
      kubevc-gen cluster init seoul --k3s-binary ./k3s-arm64 --k3s-installer ./install.sh \\
          --k3s-images ./k3s-airgap-images-arm64.tar.zst
    """
    spec = _load(ctx, region)
    handover = _read_handover(
        flux_sync, flux_manifests, git_ssh_key, git_known_hosts, git_token_file, age_key_file
    )
    server = _server(spec)
    params = ClusterParams(
        region=region,
        distribution=spec.distribution,
        api_endpoint=spec.api_endpoint,
        cluster_name=spec.effective_cluster_name,
        pod_cidr=spec.effective_pod_cidr,
        service_cidr=spec.effective_service_cidr,
        node_name=node_name_for(server.host),
        k3s_version=k3s_version or DEFAULT_K3S_VERSION,
        kubernetes_version=kubernetes_version or DEFAULT_KUBERNETES_VERSION,
        flannel_backend=flannel_backend,
        cni_manifest=cni_manifest,
        k3s_binary=k3s_binary,
        k3s_installer=k3s_installer,
        k3s_images=k3s_images,
    )
    try:
        _ = params.endpoint_host
        if spec.distribution == "k3s":
            k3s_plan(params)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    path = kubeconfig or default_kubeconfig_path()
    context = spec.effective_kube_context

    def merge(admin: str) -> None:
        result = merge_kubeconfig_file(path, admin, context, spec.api_endpoint)
        action = "replaced" if result.replaced else "added"
        click.echo(f"kubeconfig {path}: context {result.context} {action} (server {result.server})")

    progress(f"{spec.distribution} server on {server.host} for region {region}")
    problem = ssh_auth_problem(region, server)
    if problem:
        raise SpecError(problem)
    report = init_cluster(_target(server), params, dry_run=dry_run, on_kubeconfig=merge)
    _print_report(report)
    if not report.ok:
        sys.exit(EXIT_FINDINGS)
    sync_file = get_fleet(ctx).root / "clusters" / region / "flux-system" / "gotk-sync.yaml"
    if dry_run:
        click.echo(f"dry run: kubeconfig {path} would get context {context}; nothing changed")
        if flux_sync:
            click.echo(f"dry run: would apply {sync_file.relative_to(get_fleet(ctx).root)} to {context}")
        return
    if flux_sync:
        _flux_sync(path, context, sync_file, handover, crd_timeout=crd_timeout)


class _Handover:
    """What ``--flux-sync`` hands the new cluster besides gotk-sync.yaml, read before anything runs."""

    def __init__(self) -> None:
        self.manifests: str | None = None
        self.secrets: list[dict[str, Any]] = []


def _read_secret_file(option: str, path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:  # the message names the file, never its content
        raise SpecError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None


def _read_handover(
    flux_sync: bool,
    flux_manifests: Path | None,
    git_ssh_key: Path | None,
    git_known_hosts: Path | None,
    git_token_file: Path | None,
    age_key_file: Path | None,
) -> _Handover:
    handover = _Handover()
    given = [flux_manifests, git_ssh_key, git_known_hosts, git_token_file, age_key_file]
    if not flux_sync:
        if any(p is not None for p in given):
            raise SpecError(
                "--flux-manifests, --git-ssh-key, --git-known-hosts, --git-token-file and "
                "--age-key-file go with --flux-sync"
            )
        return handover
    if git_known_hosts is not None and git_ssh_key is None:
        raise SpecError("--git-known-hosts goes with --git-ssh-key")
    text = _read_secret_file("--flux-manifests", flux_manifests)
    if text is not None:
        handover.manifests = text.decode("utf-8", errors="replace")
    ssh_key = _read_secret_file("--git-ssh-key", git_ssh_key)
    known_hosts = _read_secret_file("--git-known-hosts", git_known_hosts)
    token = _read_secret_file("--git-token-file", git_token_file)
    age_key = _read_secret_file("--age-key-file", age_key_file)
    try:
        if ssh_key is not None or token is not None:
            handover.secrets.append(
                git_credentials_secret(ssh_key=ssh_key, known_hosts=known_hosts, token=token)
            )
        if age_key is not None:
            handover.secrets.append(age_key_secret(age_key))
    except FluxSyncError as exc:
        raise SpecError(str(exc)) from None
    return handover


def _flux_sync(
    kubeconfig: Path,
    context: str,
    sync_file: Path,
    handover: _Handover | None = None,
    *,
    crd_timeout: float = DEFAULT_CRD_TIMEOUT,
) -> None:
    # the kubernetes client takes a second to import; only `cluster init --flux-sync` needs it here
    from kubernetes.config import new_client_from_config

    if not sync_file.is_file():
        raise SpecError(f"{sync_file} is missing; run `kubevc-gen render` first")
    client = new_client_from_config(config_file=str(kubeconfig), context=context)  # type: ignore[no-untyped-call]
    try:
        if handover is not None and handover.manifests is not None:
            installed = apply_flux_manifests(
                client, handover.manifests, timeout=crd_timeout, progress=progress
            )
            click.echo(f"Flux controllers applied on {context}: {len(installed.applied)} object(s)")
        for secret in handover.secrets if handover is not None else []:
            click.echo(apply_secret(client, secret, progress=progress))
        result = apply_flux_sync(client, sync_file.read_text(encoding="utf-8"), progress=progress)
    except FluxSyncError as exc:
        fail([f"flux sync: {exc}"], EXIT_FINDINGS)
        return
    click.echo(f"Flux sync applied on {context}: {len(result.applied)} object(s); the fleet repo takes over")
