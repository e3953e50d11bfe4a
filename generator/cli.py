"""``kubevc-gen``: region specs in, a Flux-reconciled fleet repo out.

Every mutating command validates first, writes nothing on error, and makes one git commit
(or a new branch with ``--branch``, a staged change with ``--no-commit``, a diff with ``--dry-run``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from . import spec as spec_mod
from .gitops import ChangeOptions, ChangeResult, GitError, apply_change, unified_diff
from .render import plan_remove_region, plan_render, plan_with_regions
from .spec import Fleet, RegionSpec, SpecError
from .yamlio import YamlError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(problems: list[str], code: int = EXIT_BAD_INPUT) -> None:
    for line in problems:
        click.secho(f"error: {line}", fg="red", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn known errors into a clear message and a non-zero exit code (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            _fail(exc.problems)
        except YamlError as exc:
            _fail([str(exc)])
        except GitError as exc:
            _fail([str(exc)], EXIT_FINDINGS)
        return None

    return wrapper  # type: ignore[return-value]


def git_options(func: F) -> F:
    """``--branch``, ``--no-commit`` and ``--dry-run`` for a mutating command."""
    func = click.option("--dry-run", is_flag=True, help="Print the diff and write nothing.")(func)
    func = click.option("--no-commit", is_flag=True, help="Write and stage the change, do not commit.")(func)
    func = click.option(
        "--branch",
        "branch",
        metavar="NAME",
        default=None,
        help="Commit on a new branch NAME (for a pull request).",
    )(func)
    return func


def _options(branch: str | None, no_commit: bool, dry_run: bool) -> ChangeOptions:
    if dry_run and (branch or no_commit):
        raise SpecError("--dry-run cannot be combined with --branch or --no-commit")
    return ChangeOptions(branch=branch, no_commit=no_commit, dry_run=dry_run)


def _report(result: ChangeResult) -> None:
    if result.diff and not result.commit and result.summary.startswith("dry run"):
        click.echo(result.diff, nl=False)
    click.echo(result.summary)


# Public names for other command modules (cli_node.py) that reuse the option handling.
change_options = _options
report_change = _report


def get_fleet(ctx: click.Context) -> Fleet:
    """The fleet repo named by the global ``--fleet`` option (default: the current folder)."""
    root: Path = ctx.find_root().obj["fleet_path"]
    return Fleet.find(root)


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
@handle_errors
def init(
    path: Path, git_url: str, branch: str, name: str | None, namespace: str, age_recipient: str, force: bool
) -> None:
    """Scaffold a new fleet repo in PATH, git init it and make the first commit.

    \b
    Example:
      kubevc-gen init ./edge-fleet --git-url https://git.example.com/ops/edge-fleet.git
    """
    from .scaffold import init_fleet

    commit = init_fleet(
        path,
        git_url=git_url,
        branch=branch,
        name=name,
        namespace=namespace,
        age_recipient=age_recipient,
        force=force,
    )
    click.echo(f"initialised fleet repo {path} (commit {commit[:12]})")
    click.echo(f"next: kubevc-gen --fleet {path} region add NAME --api-endpoint https://HOST:6443 ...")


# --------------------------------------------------------------------------- region


@cli.group(context_settings=CONTEXT_SETTINGS)
def region() -> None:
    """Add, list, show, change and remove regions (one region = one edge cluster).

    \b
    Example:
      kubevc-gen region list
    """


def _storage(
    nfs_server: str | None,
    nfs_path: str | None,
    iscsi_portal: str | None,
    iscsi_iqn: str | None,
    iscsi_lun: int | None,
) -> dict[str, Any]:
    nfs = nfs_server is not None or nfs_path is not None
    iscsi = iscsi_portal is not None or iscsi_iqn is not None or iscsi_lun is not None
    if nfs and iscsi:
        raise SpecError(
            "choose one storage: --nfs-server/--nfs-path or --iscsi-portal/--iscsi-iqn/--iscsi-lun"
        )
    if nfs:
        if not (nfs_server and nfs_path):
            raise SpecError("NFS storage needs both --nfs-server and --nfs-path")
        return {"nfs": {"server": nfs_server, "path": nfs_path}}
    if iscsi:
        if not (iscsi_portal and iscsi_iqn and iscsi_lun is not None):
            raise SpecError("iSCSI storage needs --iscsi-portal, --iscsi-iqn and --iscsi-lun")
        return {"iscsi": {"portal": iscsi_portal, "iqn": iscsi_iqn, "lun": iscsi_lun}}
    raise SpecError(
        "a region needs model storage: --nfs-server/--nfs-path or --iscsi-portal/--iscsi-iqn/--iscsi-lun"
    )


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
    options = _options(branch, no_commit, dry_run)
    spec_mod.check_name(name)
    fleet = get_fleet(ctx)
    if name in fleet.region_names() or (fleet.root / "regions" / name).exists():
        raise SpecError(f"region {name!r} already exists (regions/{name}/); use `kubevc-gen region set`")
    cfg = fleet.config
    data: dict[str, Any] = {
        "name": name,
        "apiEndpoint": api_endpoint,
        "distribution": distribution,
        "architectures": list(archs) or ["amd64"],
        "storage": _storage(nfs_server, nfs_path, iscsi_portal, iscsi_iqn, iscsi_lun),
        "monitoring": monitoring,
        "git": {"url": git_url or cfg.git_url, "branch": git_branch or cfg.branch},
    }
    for key, value in (
        ("kubeContext", kube_context),
        ("clusterName", cluster_name),
        ("podCidr", pod_cidr),
        ("serviceCidr", service_cidr),
    ):
        if value is not None:
            data[key] = value
    spec = _validate_new(data, f"regions/{name}/region.yaml")
    message = f"region add {name} ({spec.distribution}, {', '.join(spec.architectures)})"
    change = plan_with_regions(fleet, [spec], message)
    _report(apply_change(fleet, change, options))


def _validate_new(data: dict[str, Any], filename: str) -> RegionSpec:
    from pydantic import ValidationError

    try:
        return RegionSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(spec_mod.format_validation_error(exc, filename)) from None


@region.command("list", context_settings=CONTEXT_SETTINGS)
@click.pass_context
@handle_errors
def region_list(ctx: click.Context) -> None:
    """List the regions as a table.

    \b
    Example:
      kubevc-gen --fleet ./edge-fleet region list
    """
    fleet = get_fleet(ctx)
    specs = fleet.load_all()
    table = Table(title=f"regions in {fleet.root.name}")
    for col in ("name", "distribution", "arch", "storage", "nodes", "models", "monitoring", "endpoint"):
        table.add_column(col)
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
        )
    Console(width=140).print(table)
    if not specs:
        click.echo("no regions yet: kubevc-gen region add NAME ...")


@region.command("show", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.pass_context
@handle_errors
def region_show(ctx: click.Context, name: str) -> None:
    """Print region NAME's spec file and its effective defaults.

    \b
    Example:
      kubevc-gen region show seoul
    """
    fleet = get_fleet(ctx)
    spec = fleet.load(name)
    click.echo(spec_mod.region_path(fleet.root, name).read_text(encoding="utf-8"), nl=False)
    click.echo("# effective:")
    click.echo(f"#   kubeContext: {spec.effective_kube_context}")
    click.echo(f"#   clusterName: {spec.effective_cluster_name}")
    click.echo(f"#   podCidr: {spec.effective_pod_cidr}")
    click.echo(f"#   serviceCidr: {spec.effective_service_cidr}")


@region.command("set", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@git_options
@click.pass_context
@handle_errors
def region_set(
    ctx: click.Context,
    name: str,
    assignments: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Change keys of region NAME (dotted keys, YAML values; comments in the file are kept).

    An empty value (KEY=) removes an optional key.

    \b
    Example:
      kubevc-gen region set seoul monitoring=false storage.nfs.path=/export/models2
      kubevc-gen region set seoul 'architectures=[arm64, amd64]' --branch seoul-amd64
    """
    from .setkeys import apply_assignments

    options = _options(branch, no_commit, dry_run)
    spec_mod.check_name(name)
    fleet = get_fleet(ctx)
    spec_mod.load_region(fleet.root, name)  # the current file must be valid to start from
    path = spec_mod.region_path(fleet.root, name)
    rel = path.relative_to(fleet.root).as_posix()
    text = apply_assignments(path.read_text(encoding="utf-8"), list(assignments), rel)
    spec, _ = spec_mod.parse_region(text, rel)
    if spec.name != name:
        raise SpecError(f"{rel}: name cannot be changed with region set (add a new region instead)")
    keys = ", ".join(a.split("=", 1)[0] for a in assignments)
    change = plan_with_regions(fleet, [spec], f"region set {name} {keys}", texts={name: text})
    _report(apply_change(fleet, change, options))


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
    options = _options(branch, no_commit, dry_run)
    spec_mod.check_name(name)
    fleet = get_fleet(ctx)
    if name not in fleet.region_names():
        raise SpecError(f"region {name!r} not found (no regions/{name}/region.yaml)")
    change = plan_remove_region(fleet, name, f"region remove {name}")
    _report(apply_change(fleet, change, options))


# --------------------------------------------------------------------------- render / validate


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--check", is_flag=True, help="Write nothing; print the diff and exit 1 if anything would change."
)
@git_options
@click.pass_context
@handle_errors
def render(ctx: click.Context, check: bool, branch: str | None, no_commit: bool, dry_run: bool) -> None:
    """Regenerate every generated file from the region specs (one commit if anything changed).

    \b
    Example:
      kubevc-gen render            # after editing regions/*/region.yaml by hand
      kubevc-gen render --check    # in CI: fails when the tree is out of date
    """
    options = _options(branch, no_commit, dry_run)
    fleet = get_fleet(ctx)
    change = plan_render(fleet, "render")
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
    files = change.effective(fleet.root)
    change.message = f"render: {len(files)} generated file(s) updated"
    _report(apply_change(fleet, change, options))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--region", "regions", multiple=True, help="Only this region (repeatable; default: all).")
@click.option("--no-checkov", is_flag=True, help="Skip the checkov policy scan.")
@click.pass_context
@handle_errors
def validate(ctx: click.Context, regions: tuple[str, ...], no_checkov: bool) -> None:
    """Validate the fleet tree: Helm render, kustomize build, schemas, Flux structure, checkov, secrets.

    Exits 1 when anything is found; each finding names region, file and object.

    \b
    Example:
      kubevc-gen validate
      kubevc-gen validate --region seoul --no-checkov
    """
    from .validate import print_report, validate_fleet

    fleet = get_fleet(ctx)
    console = Console(stderr=True)
    report = validate_fleet(
        fleet,
        regions=list(regions) or None,
        checkov=not no_checkov,
        progress=lambda msg: console.print(f"[dim]…[/dim] {msg}", highlight=False),
    )
    print_report(report, Console(width=140))
    if report.findings:
        sys.exit(EXIT_FINDINGS)


# nodeprep commands (`node ...`, `cluster ...`) live in cli_node.py, owned by the nodeprep package.
try:
    from .cli_node import cluster as _cluster_group  # type: ignore[import-not-found,unused-ignore]
    from .cli_node import node as _node_group  # type: ignore[import-not-found,unused-ignore]
except ImportError as _exc:  # pragma: no cover - only when nodeprep is not installed
    _NODE_IMPORT_ERROR: str | None = str(_exc)
else:
    _NODE_IMPORT_ERROR = None
    cli.add_command(_node_group, "node")
    cli.add_command(_cluster_group, "cluster")

# the model lifecycle (`model add/publish/promote/rollback/list`) lives in cli_model.py.
try:
    from .cli_model import model as _model_group
except ImportError as _model_exc:  # pragma: no cover - a partial installation
    _MODEL_IMPORT_ERROR: str | None = str(_model_exc)
else:
    _MODEL_IMPORT_ERROR = None
    cli.add_command(_model_group, "model")

# the central monitoring hub (`hub set/show/remove`) lives in cli_hub.py.
try:
    from .cli_hub import hub as _hub_group
except ImportError as _hub_exc:  # pragma: no cover - a partial installation
    _HUB_IMPORT_ERROR: str | None = str(_hub_exc)
else:
    _HUB_IMPORT_ERROR = None
    cli.add_command(_hub_group, "hub")


# live fleet commands (`status`, `reconcile`, `suspend`, `resume`) live in cli_status.py.
try:
    from .cli_status import reconcile as _reconcile_cmd
    from .cli_status import resume as _resume_cmd
    from .cli_status import status as _status_cmd
    from .cli_status import suspend as _suspend_cmd
except ImportError as _exc:  # pragma: no cover - only when the kubernetes client is not installed
    _STATUS_IMPORT_ERROR: str | None = str(_exc)
else:
    _STATUS_IMPORT_ERROR = None
    for _cmd in (_status_cmd, _reconcile_cmd, _suspend_cmd, _resume_cmd):
        cli.add_command(_cmd)


def main() -> None:
    """Console script entry point (``kubevc-gen``)."""
    cli(prog_name="kubevc-gen")


if __name__ == "__main__":  # pragma: no cover
    main()
