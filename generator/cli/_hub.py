"""``kubevc-gen hub ...``: the central monitoring hub every region remote-writes to.

``hub set`` records ``hub/hub.yaml`` and re-renders: ``clusters/hub/`` gets the full
kube-prometheus-stack plus the kubevc dashboards and rules, every region with monitoring switches
to a Prometheus agent that remote-writes with its ``region`` label. ``hub remove`` switches the
regions back to their own full stack. Both go through :func:`kubevc.generator.repo.apply_change`
(one commit, ``--branch``, ``--no-commit``, ``--dry-run``).
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import workflows
from ..errors import SpecError
from ..repo import load_hub, missing_credentials
from ..spec import HUB_FILE
from ._common import (
    CONTEXT_SETTINGS,
    change_options,
    file_option,
    get_fleet,
    git_options,
    handle_errors,
    report_change,
)
from ._output import document, emit, output_option


@click.group(context_settings=CONTEXT_SETTINGS)
def hub() -> None:
    """The central monitoring hub: one Prometheus + Grafana for every region.

    \b
    Example:
      kubevc-gen hub set --api-endpoint https://10.8.100.1:6443 --retention 30d
      kubevc-gen hub show
    """


@hub.command("set", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--api-endpoint", default=None, help="https:// URL of the hub cluster's API (required the first time)."
)
@click.option("--kube-context", default=None, help="kubeconfig context of the hub (default: hub).")
@click.option(
    "--retention", default=None, help="How long the hub keeps samples (Prometheus duration; default 15d)."
)
@click.option(
    "--remote-write-url",
    default=None,
    help="https:// URL regions write to (default: https://<api host>/api/v1/write, the hub's Ingress).",
)
@click.option(
    "--credentials-secret",
    default=None,
    help="Name of the SOPS-encrypted Secret (keys username, password) regions authenticate with.",
)
@click.option("--ingress-class", default=None, help="ingressClassName of the hub's remote-write Ingress.")
@click.option(
    "--remote-write-username", default=None, help="Remote-write user (with --remote-write-password-file)."
)
@file_option(
    "--remote-write-password-file",
    help_text="File holding the remote-write password: encrypted with sops into every agent folder.",
)
@git_options
@click.pass_context
@handle_errors
def hub_set(
    ctx: click.Context,
    api_endpoint: str | None,
    kube_context: str | None,
    retention: str | None,
    remote_write_url: str | None,
    credentials_secret: str | None,
    ingress_class: str | None,
    remote_write_username: str | None,
    remote_write_password_file: Path | None,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Create or change the monitoring hub (hub/hub.yaml) and switch the regions to agent mode.

    Options not given keep their current value. With --remote-write-username and
    --remote-write-password-file, the credentials Secret is encrypted with sops into every agent
    folder in the same commit (see docs/monitoring.md).

    \b
    Example:
      kubevc-gen hub set --api-endpoint https://10.8.100.1:6443 --kube-context hub --retention 30d
      kubevc-gen hub set --remote-write-url https://metrics.example.com/api/v1/write --dry-run
    """
    options = change_options(branch, no_commit, dry_run)
    fleet = get_fleet(ctx)
    changes = {
        "apiEndpoint": api_endpoint,
        "kubeContext": kube_context,
        "retention": retention,
        "remoteWriteUrl": remote_write_url,
        "credentialsSecret": credentials_secret,
        "ingressClassName": ingress_class,
    }
    credentials = None
    if (remote_write_username is None) != (remote_write_password_file is None):
        raise SpecError("give --remote-write-username and --remote-write-password-file together")
    if remote_write_username is not None and remote_write_password_file is not None:
        try:
            password = remote_write_password_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise SpecError(
                f"--remote-write-password-file {remote_write_password_file}: {exc.strerror}"
            ) from None
        if not password:
            raise SpecError(f"--remote-write-password-file {remote_write_password_file} is empty")
        credentials = (remote_write_username, password)
    done = workflows.set_hub(fleet, changes, options, credentials)
    report_change(done.result)
    if done.missing_credentials and not dry_run:
        click.echo(
            f"next: put the remote-write credentials (Secret {done.spec.credentials_secret!r}, keys username "
            f"and password), encrypted with sops, into {', '.join(done.missing_credentials)} as "
            "remote-write.sops.yaml: `kubevc-gen hub set --remote-write-username USER "
            "--remote-write-password-file FILE` (docs/monitoring.md)"
        )


@hub.command("show", context_settings=CONTEXT_SETTINGS)
@output_option
@click.pass_context
@handle_errors
def hub_show(ctx: click.Context, output: str) -> None:
    """Print hub/hub.yaml, where regions write to and which regions ship to the hub.

    -o json: {"schemaVersion": 1, "kind": "Hub", "spec": {hub.yaml's keys} | null, "effective":
    {"kubeContext", "remoteWriteUrl"} | null, "agentRegions": [...], "missingCredentials": [...]}.

    \b
    Example:
      kubevc-gen hub show
      kubevc-gen hub show -o yaml
    """
    fleet = get_fleet(ctx)
    spec = load_hub(fleet.root)
    if output != "table":
        regions = fleet.load_all() if spec is not None else []
        doc = document(
            "Hub",
            spec=spec.to_yaml_data() if spec is not None else None,
            effective=(
                {
                    "kubeContext": spec.effective_kube_context,
                    "remoteWriteUrl": spec.effective_remote_write_url,
                }
                if spec is not None
                else None
            ),
            agentRegions=[r.name for r in regions if r.monitoring],
            missingCredentials=list(missing_credentials(fleet, regions)) if spec is not None else [],
        )
        emit(output, doc, ["hub/hub"] if spec is not None else [], lambda: None)
        return
    if spec is None:
        click.echo("no monitoring hub: every region runs its own kube-prometheus-stack")
        click.echo("add one: kubevc-gen hub set --api-endpoint https://HOST:6443")
        return
    click.echo((fleet.root / HUB_FILE).read_text(encoding="utf-8"), nl=False)
    regions = fleet.load_all()
    click.echo("# effective:")
    click.echo(f"#   kubeContext: {spec.effective_kube_context}")
    click.echo(f"#   remoteWriteUrl: {spec.effective_remote_write_url}")
    shipping = [r.name for r in regions if r.monitoring]
    click.echo(f"#   regions in agent mode: {', '.join(shipping) or '(none)'}")
    for folder in missing_credentials(fleet, regions):
        click.echo(f"#   missing encrypted credentials: {folder}*.sops.yaml")


@hub.command("remove", context_settings=CONTEXT_SETTINGS)
@git_options
@click.pass_context
@handle_errors
def hub_remove(ctx: click.Context, branch: str | None, no_commit: bool, dry_run: bool) -> None:
    """Remove the hub: delete hub/hub.yaml and clusters/hub; regions get their own full stack back.

    \b
    Example:
      kubevc-gen hub remove --branch no-hub
    """
    options = change_options(branch, no_commit, dry_run)
    fleet = get_fleet(ctx)
    report_change(workflows.remove_hub(fleet, options))
