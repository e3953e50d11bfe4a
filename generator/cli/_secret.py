"""``kubevc-gen secret ...``: SOPS-encrypted Secrets of a region (encrypted with the real sops + age).

Values come from files or the command line and go to sops on stdin; they are never written in the
clear, printed or logged. Each change is one commit (``--branch``, ``--no-commit``, ``--dry-run``).
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import workflows
from ..errors import SpecError
from ._common import CONTEXT_SETTINGS, change_options, get_fleet, git_options, handle_errors, report_change


def _pairs(values: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            # never echo the value: it may be the secret itself
            raise SpecError(f"{option} takes KEY=VALUE (got an argument without '=' or without a key)")
        if key in {k for k, _ in pairs}:
            raise SpecError(f"secret key {key!r} is given twice")
        pairs.append((key, rest))
    return pairs


@click.group(context_settings=CONTEXT_SETTINGS)
def secret() -> None:
    """SOPS-encrypted Secrets of a region (apps/REGION/secrets/NAME.sops.yaml).

    \b
    Example:
      kubevc-gen secret set seoul registry-auth --from-file .dockerconfigjson=./config.json \\
          --type kubernetes.io/dockerconfigjson
      kubevc-gen secret list
    """


@secret.command("set", context_settings=CONTEXT_SETTINGS)
@click.argument("region")
@click.argument("name")
@click.option(
    "--from-file", "from_files", multiple=True, metavar="KEY=PATH", help="Key from a file (repeatable)."
)
@click.option(
    "--from-literal", "literals", multiple=True, metavar="KEY=VALUE", help="Key from a value (repeatable)."
)
@click.option("--type", "secret_type", default="Opaque", show_default=True, help="The Secret's type.")
@click.option("--namespace", default=None, help="The Secret's namespace (default: the fleet's).")
@git_options
@click.pass_context
@handle_errors
def secret_set(
    ctx: click.Context,
    region: str,
    name: str,
    from_files: tuple[str, ...],
    literals: tuple[str, ...],
    secret_type: str,
    namespace: str | None,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Encrypt Secret NAME for REGION with sops and commit it, listed in apps/REGION/kustomization.yaml.

    The age recipients come from .sops.yaml; Flux decrypts with the `sops-age` Secret
    (`kubevc-gen cluster init REGION --age-key-file FILE`).

    \b
    Example:
      kubevc-gen secret set seoul gateway-token --from-literal token=...
      kubevc-gen secret set seoul tls --from-file tls.crt=./crt.pem --from-file tls.key=./key.pem \\
          --type kubernetes.io/tls
    """
    options = change_options(branch, no_commit, dry_run)
    fleet = get_fleet(ctx)
    files = {k: Path(v) for k, v in _pairs(from_files, "--from-file")}
    entries = workflows.read_entries(files, dict(_pairs(literals, "--from-literal")))
    result = workflows.set_secret(
        fleet, region, name, entries, namespace=namespace, secret_type=secret_type, options=options
    )
    report_change(result)


@secret.command("list", context_settings=CONTEXT_SETTINGS)
@click.argument("region", required=False)
@click.pass_context
@handle_errors
def secret_list(ctx: click.Context, region: str | None) -> None:
    """List the regions' secrets (names and files; never values).

    \b
    Example:
      kubevc-gen secret list seoul
    """
    entries = workflows.list_secrets(get_fleet(ctx), region)
    for entry in entries:
        state = "" if entry.present else "  (missing: run `kubevc-gen secret set`)"
        click.echo(f"{entry.region}\t{entry.name}\t{entry.file}{state}")
    if not entries:
        click.echo("no secrets yet: kubevc-gen secret set REGION NAME --from-literal KEY=VALUE")


@secret.command("remove", context_settings=CONTEXT_SETTINGS)
@click.argument("region")
@click.argument("name")
@git_options
@click.pass_context
@handle_errors
def secret_remove(
    ctx: click.Context, region: str, name: str, branch: str | None, no_commit: bool, dry_run: bool
) -> None:
    """Remove Secret NAME from REGION: its file and its entry in the region spec, one commit.

    \b
    Example:
      kubevc-gen secret remove seoul gateway-token
    """
    options = change_options(branch, no_commit, dry_run)
    report_change(workflows.remove_secret(get_fleet(ctx), region, name, options))
