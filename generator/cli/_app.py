"""``kubevc-gen``: the root group, ``init``, ``region ...``, ``render`` and ``validate``.

Every mutating command validates first, writes nothing on error, and makes one git commit
(or a new branch with ``--branch``, a staged change with ``--no-commit``, a diff with ``--dry-run``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import workflows
from ..errors import SpecError
from ..repo import Fleet, age_recipients, is_machine_local, read_values_file, region_path, unified_diff
from ..spec import RegionSpec, Selector, check_name, region_labels
from ..validate import print_report, validate_fleet
from ._common import (
    CONTEXT_SETTINGS,
    EXIT_FINDINGS,
    change_options,
    file_option,
    get_fleet,
    git_options,
    handle_errors,
    region_filter,
    report_change,
    selected_regions,
    selector_option,
)
from ._output import document, emit, output_option
from ._progress import progress_bar


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--fleet",
    "fleet_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default="current folder",
    help="The fleet repo to work on.",
)
@click.version_option(package_name="kubevc", prog_name="kubevc-gen")
@click.pass_context
def cli(ctx: click.Context, fleet_path: Path) -> None:
    """Describe edge regions; get a git fleet repo that Flux reconciles.

    \b
    Example:
      kubevc-gen init ./fleet --git-url https://git.example.com/ops/fleet.git
      cd fleet && kubevc-gen region add seoul --api-endpoint https://10.8.0.1:6443 \\
          --arch arm64 --nfs-server 10.8.0.10 --nfs-path /export/models
      kubevc-gen validate
    """
    ctx.ensure_object(dict)
    ctx.obj["fleet_path"] = fleet_path


# --------------------------------------------------------------------------- init


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--git-url",
    default="https://git.example.com/ops/fleet.git",
    show_default=True,
    help="URL Flux clones the fleet repo from (default for every region).",
)
@click.option("--branch", default="main", show_default=True, help="Branch Flux reconciles.")
@click.option("--name", default=None, help="Fleet name (default: the folder name).")
@click.option("--namespace", default="kubevc", show_default=True, help="Namespace of the kubevc apps.")
@click.option("--age-recipient", default="", help="age public key for .sops.yaml (age1...).")
@click.option("--force", is_flag=True, help="Scaffold into a non-empty folder.")
@file_option(
    "--age-key-file",
    help_text="Make a new age key in this file (outside the repo, mode 0600) and use its public key.",
)
@click.option(
    "--kubevc-source",
    default=None,
    help="pip requirement the fleet CI installs kubevc from (git URL@revision or a wheel; "
    "default: where this kubevc-gen was installed from).",
)
@handle_errors
def init(
    path: Path,
    git_url: str,
    branch: str,
    name: str | None,
    namespace: str,
    age_recipient: str,
    force: bool,
    age_key_file: Path | None,
    kubevc_source: str | None,
) -> None:
    """Scaffold a new fleet repo in PATH, git init it and make the first commit.

    \b
    Example:
      kubevc-gen init ./edge-fleet --git-url https://git.example.com/ops/edge-fleet.git
    """
    commit = workflows.init_fleet(
        path,
        git_url=git_url,
        branch=branch,
        name=name,
        namespace=namespace,
        age_recipient=age_recipient,
        force=force,
        age_key_file=age_key_file,
        kubevc_source=kubevc_source,
    )
    click.echo(f"initialised fleet repo {path} (commit {commit[:12]})")
    source = Fleet(path.resolve()).config.kubevc_source or ""
    if is_machine_local(source):  # the fleet CI installs kubevc from here: say it cannot elsewhere
        click.secho(
            f"note: the fleet CI installs kubevc from {source}, a path on this machine only: for a CI "
            "runner elsewhere, set kubevcSource in kubevc-fleet.yaml (a git URL@commit or a wheel URL)",
            fg="yellow",
        )
    if age_key_file is not None:  # the public key only: the private key stays in the file
        click.echo(
            f"age key written to {age_key_file} (mode 0600); public key: {', '.join(age_recipients(path))}"
        )
    click.echo(f"next: kubevc-gen --fleet {path} region add NAME --api-endpoint https://HOST:6443 ...")


# --------------------------------------------------------------------------- region


@cli.group(context_settings=CONTEXT_SETTINGS)
def region() -> None:
    """Add, list, show, change and remove regions (one region = one edge cluster).

    \b
    Example:
      kubevc-gen region list
    """


@region.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option(
    "--api-endpoint", required=True, help="https:// URL operators reach the API at (VPN/port-forward)."
)
@click.option("--kube-context", default=None, help="kubeconfig context name (default: NAME).")
@click.option("--distribution", type=click.Choice(["k3s", "kubeadm"]), default="k3s", show_default=True)
@click.option("--cluster-name", default=None, help="Cluster name (default: NAME).")
@click.option("--pod-cidr", default=None, help="Pod CIDR (default per distribution).")
@click.option("--service-cidr", default=None, help="Service CIDR (default per distribution).")
@click.option(
    "--arch",
    "archs",
    multiple=True,
    type=click.Choice(["amd64", "arm64", "armhf"]),
    help="Node architecture (repeatable; default amd64).",
)
@click.option("--nfs-server", default=None, help="NFS server of the model store.")
@click.option("--nfs-path", default=None, help="NFS export path of the model store.")
@click.option("--iscsi-portal", default=None, help="iSCSI target portal host:port.")
@click.option("--iscsi-iqn", default=None, help="iSCSI target IQN.")
@click.option("--iscsi-lun", type=int, default=None, help="iSCSI LUN.")
@click.option(
    "--monitoring/--no-monitoring",
    default=True,
    show_default=True,
    help="Install kube-prometheus-stack and the kubevc dashboards/rules.",
)
@click.option("--git-url", default=None, help="Git URL this region's Flux pulls (default: the fleet's).")
@click.option(
    "--git-branch", default=None, help="Git branch this region's Flux pulls (default: the fleet's)."
)
@git_options
@click.pass_context
@handle_errors
def region_add(
    ctx: click.Context,
    name: str,
    api_endpoint: str,
    kube_context: str | None,
    distribution: str,
    cluster_name: str | None,
    pod_cidr: str | None,
    service_cidr: str | None,
    archs: tuple[str, ...],
    nfs_server: str | None,
    nfs_path: str | None,
    iscsi_portal: str | None,
    iscsi_iqn: str | None,
    iscsi_lun: int | None,
    monitoring: bool,
    git_url: str | None,
    git_branch: str | None,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Add region NAME: write regions/NAME/region.yaml and render its part of the tree.

    \b
    Example:
      kubevc-gen region add seoul --api-endpoint https://10.8.0.1:6443 --distribution k3s \\
          --arch arm64 --nfs-server 10.8.0.10 --nfs-path /export/models
    """
    options = change_options(branch, no_commit, dry_run)
    check_name(name)
    fleet = get_fleet(ctx)
    optional = {
        "kubeContext": kube_context,
        "clusterName": cluster_name,
        "podCidr": pod_cidr,
        "serviceCidr": service_cidr,
    }
    result = workflows.add_region(
        fleet,
        name,
        api_endpoint=api_endpoint,
        distribution=distribution,
        archs=archs,
        storage=(nfs_server, nfs_path, iscsi_portal, iscsi_iqn, iscsi_lun),
        monitoring=monitoring,
        git_url=git_url,
        git_branch=git_branch,
        optional=optional,
        options=options,
    )
    report_change(result)


@region.command("list", context_settings=CONTEXT_SETTINGS)
@selector_option
@output_option
@click.pass_context
@handle_errors
def region_list(ctx: click.Context, selector: Selector | None, output: str) -> None:
    """List the regions (a table, or -o json|yaml|name) with their labels.

    Labels are the region's own (`region label`) and those kubevc computes from its spec:
    kubevc.io/region, kubevc.io/distribution (k3s|kubeadm), kubevc.io/arch (the architecture, or
    multi), kubevc.io/arch-ARCH=true for each architecture, kubevc.io/storage (nfs|iscsi). Every
    --selector/-l and rollout wave matches both.

    -o json: {"schemaVersion": 1, "kind": "RegionList", "items": [REGION]}, each REGION as in
    `region show -o json`.

    \b
    Example:
      kubevc-gen --fleet ./edge-fleet region list
      kubevc-gen region list -o name
      kubevc-gen region list -l kubevc.io/arch=arm64
    """
    fleet = get_fleet(ctx)
    specs = fleet.load_all()
    if selector is not None:
        chosen = set(selected_regions(fleet, (), selector))
        specs = [s for s in specs if s.name in chosen]
    doc = document("RegionList", items=[region_document(r) for r in specs])
    emit(output, doc, [f"region/{r.name}" for r in specs], lambda: _region_table(fleet.root.name, specs))


def _region_table(fleet_name: str, specs: list[RegionSpec]) -> None:
    table = Table(title=f"regions in {fleet_name}")
    for col in ("name", "distribution", "arch", "storage", "nodes", "models", "monitoring", "endpoint"):
        table.add_column(col)
    table.add_column("labels (kubevc.io/ computed)", overflow="fold")
    for r in specs:
        table.add_row(
            r.name,
            r.distribution,
            ",".join(r.architectures),
            r.storage.kind,
            str(len(r.nodes)),
            str(len(r.models)),
            "yes" if r.monitoring else "no",
            r.api_endpoint,
            ",".join(f"{k}={v}" for k, v in region_labels(r).items()),
        )
    Console(width=140).print(table)
    if not specs:
        click.echo("no regions yet: kubevc-gen region add NAME ...")


def region_document(spec: RegionSpec) -> dict[str, Any]:
    """A region in `-o json|yaml`: its name, spec (region.yaml's keys), effective defaults and labels
    (its own and the ``kubevc.io/`` ones computed from the spec: what ``-l`` matches)."""
    return document(
        "Region",
        name=spec.name,
        spec=spec.to_yaml_data(),
        effective={
            "kubeContext": spec.effective_kube_context,
            "clusterName": spec.effective_cluster_name,
            "podCidr": spec.effective_pod_cidr,
            "serviceCidr": spec.effective_service_cidr,
        },
        labels=region_labels(spec),
    )


@region.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@output_option
@click.pass_context
@handle_errors
def region_show(ctx: click.Context, name: str, output: str) -> None:
    """Print region NAME's spec file and its effective defaults (or -o json|yaml|name).

    -o json: {"schemaVersion": 1, "kind": "Region", "name", "spec": {region.yaml's keys},
    "effective": {"kubeContext", "clusterName", "podCidr", "serviceCidr"}, "labels": {its own and
    the computed kubevc.io/ labels}}.

    \b
    Example:
      kubevc-gen region show seoul
      kubevc-gen region show seoul -o json | jq .effective
    """
    fleet = get_fleet(ctx)
    spec = fleet.load(name)
    if output != "table":
        emit(output, region_document(spec), [f"region/{spec.name}"], lambda: None)
        return
    click.echo(region_path(fleet.root, name).read_text(encoding="utf-8"), nl=False)
    click.echo("# effective:")
    click.echo(f"#   kubeContext: {spec.effective_kube_context}")
    click.echo(f"#   clusterName: {spec.effective_cluster_name}")
    click.echo(f"#   podCidr: {spec.effective_pod_cidr}")
    click.echo(f"#   serviceCidr: {spec.effective_service_cidr}")


@region.command("set", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
@click.option(
    "--values-file",
    "values_files",
    multiple=True,
    metavar="CHART=FILE",
    help="Merge FILE (YAML) into values.CHART of the region (repeatable).",
)
@git_options
@click.pass_context
@handle_errors
def region_set(
    ctx: click.Context,
    name: str,
    assignments: tuple[str, ...],
    values_files: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Change keys of region NAME (dotted keys, YAML values; comments in the file are kept).

    An empty value (KEY=) removes an optional key. values.CHART.PATH=VALUE overrides a chart value
    in this region only (charts: kubevc-serving, kubevc-gateway, kubevc-model-store,
    kubevc-monitoring, kube-prometheus-stack), checked against the chart's values schema
    (kube-prometheus-stack: the keys kubevc manages, see the README). images.WORKLOAD overrides
    the image catalogue (`kubevc-gen image list`).

    \b
    Example:
      kubevc-gen region set seoul monitoring=false storage.nfs.path=/export/models2
      kubevc-gen region set seoul 'architectures=[arm64, amd64]' --branch seoul-amd64
      kubevc-gen region set seoul values.kubevc-serving.resources.limits.cpu=2
      kubevc-gen region set seoul values.kube-prometheus-stack.prometheus.prometheusSpec.retention=3d
      kubevc-gen region set seoul --values-file kubevc-gateway=gateway-seoul.yaml
    """
    options = change_options(branch, no_commit, dry_run)
    check_name(name)
    if not assignments and not values_files:
        raise SpecError("region set: give KEY=VALUE assignments or --values-file CHART=FILE")
    files = [read_values_file(spec) for spec in values_files]
    fleet = get_fleet(ctx)
    report_change(workflows.set_region_keys(fleet, name, list(assignments), options, files))


@region.command("remove", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@git_options
@click.pass_context
@handle_errors
def region_remove(ctx: click.Context, name: str, branch: str | None, no_commit: bool, dry_run: bool) -> None:
    """Remove region NAME: its spec, clusters/NAME and apps/NAME (nothing else).

    \b
    Example:
      kubevc-gen region remove busan --branch retire-busan
    """
    options = change_options(branch, no_commit, dry_run)
    check_name(name)
    fleet = get_fleet(ctx)
    report_change(workflows.remove_region(fleet, name, options))


# --------------------------------------------------------------------------- render / validate


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--check", is_flag=True, help="Write nothing; print the diff and exit 1 if anything would change."
)
@selector_option
@git_options
@click.pass_context
@handle_errors
def render(
    ctx: click.Context,
    check: bool,
    selector: Selector | None,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Regenerate every generated file from the region specs (one commit if anything changed).

    \b
    Example:
      kubevc-gen render            # after editing regions/*/region.yaml by hand
      kubevc-gen render --check    # in CI: fails when the tree is out of date
      kubevc-gen render -l tier=canary   # only the canary regions' folders (a staged change)
    """
    options = change_options(branch, no_commit, dry_run)
    fleet = get_fleet(ctx)
    with progress_bar("render") as bar:
        if selector is not None:
            bar.note("rendering the selected regions")
            change = workflows.plan_regions_render(fleet, selected_regions(fleet, (), selector))
        else:
            bar.note("rendering every region")
            change = workflows.plan_full_render(fleet)
    if check:
        files = change.effective(fleet.root)
        if files:
            click.echo(unified_diff(fleet.root, files), nl=False)
            click.secho(
                f"render --check: {len(files)} file(s) out of date; run `kubevc-gen render`",
                fg="red",
                err=True,
            )
            sys.exit(EXIT_FINDINGS)
        click.echo("render --check: the generated tree is up to date")
        return
    with progress_bar("render") as bar:
        bar.note("writing and committing the generated files")
        result = workflows.render_fleet(fleet, change, options)
    report_change(result)


@cli.command(context_settings=CONTEXT_SETTINGS)
@region_filter("Only this region (repeatable; default: all).", metavar=None)
@selector_option
@click.option("--no-checkov", is_flag=True, help="Skip the checkov policy scan.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Check every region again, ignoring the results cached in .git/kubevc-gen/validate-cache "
    "(by default a region whose files, tools and policy are unchanged is not checked again).",
)
@click.option(
    "--require-policy",
    is_flag=True,
    help="Fail when checkov is not installed (for CI); without it the policy scan is reported as skipped.",
)
@output_option
@click.pass_context
@handle_errors
def validate(
    ctx: click.Context,
    regions: tuple[str, ...],
    selector: Selector | None,
    no_checkov: bool,
    no_cache: bool,
    require_policy: bool,
    output: str,
) -> None:
    """Validate the fleet tree: Helm render, kustomize build, schemas, Flux structure, checkov, secrets.

    Exits 1 when anything is found; each finding names region, file and object.
    -o json: {"schemaVersion": 1, "kind": "ValidationReport", "regions": [...], "findings":
    [{"region", "check", "file", "object", "message"}], "notes": [...], "summary": {"findings",
    "exitCode"}}; -o name: region/NAME of each region with a finding.

    \b
    Example:
      kubevc-gen validate
      kubevc-gen validate --region seoul --no-checkov
      kubevc-gen validate --require-policy -o json     # in CI: a missing checkov is a failure
    """
    fleet = get_fleet(ctx)
    regions = selected_regions(fleet, regions, selector)
    with progress_bar("validate", output) as bar:
        report = validate_fleet(
            fleet,
            regions=list(regions) or None,
            checkov=not no_checkov,
            require_policy=require_policy,
            progress=bar.note,
            use_cache=not no_cache,
            region_done=lambda _name, done, total: bar.update(done, total),
        )
    code = EXIT_FINDINGS if report.findings else 0
    doc = document(
        "ValidationReport",
        regions=list(report.regions),
        findings=[
            {"region": f.region, "check": f.check, "file": f.file, "object": f.obj, "message": f.message}
            for f in report.findings
        ],
        notes=list(report.notes),
        summary={"findings": len(report.findings), "exitCode": code},
    )
    failed = sorted({f.region for f in report.findings})
    emit(output, doc, [f"region/{r}" for r in failed], lambda: print_report(report, Console(width=140)))
    if report.findings:
        sys.exit(EXIT_FINDINGS)
