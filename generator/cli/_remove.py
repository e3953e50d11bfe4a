"""``kubevc-gen model remove`` and ``kubevc-gen node remove`` (registered on their groups in
``cli/__init__.py``)."""

from __future__ import annotations

import click

from .. import workflows
from ..spec import Selector, check_name
from ._common import (
    CONTEXT_SETTINGS,
    change_options,
    get_fleet,
    git_options,
    handle_errors,
    only_regions_option,
    report_change,
    selected_regions,
    selector_option,
)


@click.command("remove", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@only_regions_option
@selector_option
@click.option(
    "--force", is_flag=True, help="Remove it even where it is the stable version the gateway serves."
)
@git_options
@click.pass_context
@handle_errors
def model_remove(
    ctx: click.Context,
    name: str,
    regions: tuple[str, ...],
    selector: Selector | None,
    force: bool,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Unregister model NAME from regions (default: every region that has it), one commit.

    Refused where NAME holds the stable version label, the version the gateway's route for NAME
    serves (its clients would get 404), unless --force. The model store keeps its versions; the
    label file models/NAME/labels.txt goes when no region refers to it any more.

    \b
    Example:
      kubevc-gen model remove bert --region busan
      kubevc-gen model remove resnet50 -l tier=canary --force
    """
    options = change_options(branch, no_commit, dry_run)
    check_name(name, "model name")
    fleet = get_fleet(ctx)
    regions = selected_regions(fleet, regions, selector)
    report_change(workflows.remove_model(fleet, name, regions, force=force, options=options))


@click.command("remove", context_settings=CONTEXT_SETTINGS)
@click.argument("region")
@click.argument("host")
@git_options
@click.pass_context
@handle_errors
def node_remove(
    ctx: click.Context, region: str, host: str, branch: str | None, no_commit: bool, dry_run: bool
) -> None:
    """Take node HOST out of REGION's spec (one commit) and print how to drain it.

    The cluster is not touched: drain and delete the node yourself with the printed kubectl
    commands (the Kubernetes node name is the machine's hostname; `kubectl get nodes -o wide`
    shows it next to HOST's address).

    \b
    Example:
      kubevc-gen node remove seoul 10.8.0.12
    """
    options = change_options(branch, no_commit, dry_run)
    check_name(region)
    fleet = get_fleet(ctx)
    context = fleet.load(region).effective_kube_context if region in fleet.region_names() else region
    node, result = workflows.remove_node(fleet, region, host, options)
    report_change(result)
    # k3s and kubeadm name a node after its hostname, which the spec does not record
    name = node.labels.get("kubernetes.io/hostname", "<node>")
    click.echo(f"now drain and delete the node ({name} = the Kubernetes node name of {host}):")
    click.echo(f"  kubectl --context {context} drain {name} --ignore-daemonsets --delete-emptydir-data")
    click.echo(f"  kubectl --context {context} delete node {name}")
    if node.role == "server":
        click.secho(
            f"warning: {host} was a server node: the control plane (k3s server / kubeadm control plane) "
            "ran there; check the cluster keeps one before you drain it",
            fg="yellow",
            err=True,
        )
