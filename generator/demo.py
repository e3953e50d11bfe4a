"""The whole kubevc-gen flow in a temporary fleet repo (``make demo``).

``python -m kubevc.generator.demo`` scaffolds a fleet repo, adds the two demo regions
(``seoul``: k3s, arm64, NFS; ``busan``: kubeadm, amd64, iSCSI), names an arm64 serving image
(``image add``), labels the regions (``region label``), gives them models with ``region set``,
renders, validates for real (Helm SDK, kubectl kustomize, kubernetes-validate, checkov) and
prints ``git log --oneline``.

``python -m kubevc.generator.demo --write-fleet fleet`` (``make fleet``) copies the resulting tree
(without ``.git``) into ``fleet/``, the committed example the test suite checks for drift.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click

from .cli import cli

FLEET_NAME = "demo-fleet"
GIT_URL = "https://git.example.com/kubevc/demo-fleet.git"
# The demo fleet's CI installs kubevc from the project's Source URL (pyproject.toml); pin a commit.
KUBEVC_SOURCE = "kubevc[gen] @ git+https://github.com/kubevc/kubevc@main"

SEOUL = [
    "region", "add", "seoul", "--api-endpoint", "https://10.8.0.1:6443", "--distribution", "k3s",
    "--arch", "arm64", "--nfs-server", "10.8.0.10", "--nfs-path", "/export/models",
]  # fmt: skip
BUSAN = [
    "region", "add", "busan", "--api-endpoint", "https://10.9.0.1:6443", "--distribution", "kubeadm",
    "--arch", "amd64", "--iscsi-portal", "10.9.0.20:3260", "--iscsi-iqn", "iqn.2026-01.kr.busan:models",
    "--iscsi-lun", "0",
]  # fmt: skip
# A community build of TF Serving for arm64/arm (an older TF Serving release: check your SavedModels
# load on it); busan (amd64) keeps the official tensorflow/serving image.
SERVING_ARM64 = [
    "image", "add", "serving", "emacski/tensorflow-serving:2.6.0",
    "--platform", "linux/arm64", "--platform", "linux/arm/v7",
]  # fmt: skip
SEOUL_MODELS = (
    "models=[{name: yolov5, basePath: /models/yolov5, profile: detection}, "
    "{name: mobilenet, basePath: /models/mobilenet, profile: classification}]"
)
BUSAN_MODELS = (
    "models=[{name: resnet50, basePath: /models/resnet50, profile: classification, "
    "versionPolicy: specific, versions: [1, 2], versionLabels: {stable: 1, canary: 2}}]"
)


def step(title: str) -> None:
    click.secho(f"\n==> {title}", fg="cyan", bold=True)


def run(fleet: Path | None, args: Sequence[str]) -> int:
    """Run one kubevc-gen command in-process, echoing it; return its exit code."""
    full = (["--fleet", str(fleet)] if fleet is not None else []) + list(args)
    click.secho("$ kubevc-gen " + " ".join(_quote(a) for a in full), fg="bright_black")
    try:
        cli.main(args=full, prog_name="kubevc-gen", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in " []{},") else arg


def build(fleet: Path, *, checkov: bool = True) -> int:
    """Create the demo fleet at ``fleet``; return validate's exit code."""
    step("1/7 scaffold a fleet repo (cookiecutter template, git init, first commit)")
    init = ["init", str(fleet), "--name", FLEET_NAME, "--git-url", GIT_URL, "--kubevc-source", KUBEVC_SOURCE]
    if run(None, init) != 0:
        return 2
    step("2/7 add region seoul (k3s, arm64, NFS model store)")
    if run(fleet, SEOUL) != 0:
        return 2
    step("3/7 add region busan (kubeadm, amd64, iSCSI model store)")
    if run(fleet, BUSAN) != 0:
        return 2
    step("4/7 an arm64 serving image for seoul (tensorflow/serving is amd64 only); region labels")
    if run(fleet, SERVING_ARM64) != 0:
        return 2
    if run(fleet, ["region", "label", "seoul", "tier=canary"]) != 0:
        return 2
    if run(fleet, ["region", "label", "busan", "tier=edge"]) != 0:
        return 2
    step("5/7 give both regions their models (region set keeps comments; one commit each)")
    if run(fleet, ["region", "set", "seoul", SEOUL_MODELS]) != 0:
        return 2
    if run(fleet, ["region", "set", "busan", BUSAN_MODELS]) != 0:
        return 2
    step("6/7 render again: idempotent, nothing to commit")
    if run(fleet, ["render"]) != 0 or run(fleet, ["render", "--check"]) != 0:
        return 2
    step(
        "7/7 validate: Helm SDK render, kubectl kustomize, kubernetes-validate, Flux checks, checkov, secrets"
    )
    return run(fleet, ["validate"] + ([] if checkov else ["--no-checkov"]))


def write_fleet(target: Path) -> None:
    """Replace ``target``'s content with a freshly built demo fleet (no .git)."""
    with tempfile.TemporaryDirectory(prefix="kubevc-fleet-") as tmp:
        fleet = Path(tmp) / FLEET_NAME
        code = build(fleet, checkov=False)
        if code != 0:
            raise SystemExit(f"demo fleet build failed (exit {code}); {target} left unchanged")
        wanted = {p.relative_to(fleet) for p in fleet.rglob("*") if p.is_file() and ".git" not in p.parts[:1]}
        wanted = {p for p in wanted if p.parts[0] != ".git"}
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(target.rglob("*"), reverse=True):
            rel = path.relative_to(target)
            if path.is_file() and rel not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        for rel in sorted(wanted):
            dest = target / rel
            content = (fleet / rel).read_bytes()
            if not dest.is_file() or dest.read_bytes() != content:
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(content)
    click.echo(f"\nwrote the demo fleet to {target} ({len(wanted)} files)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubevc.generator.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--write-fleet", type=Path, metavar="DIR", help="write the demo fleet tree into DIR")
    parser.add_argument("--no-checkov", action="store_true", help="skip the checkov scan in validate")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary fleet repo and print its path"
    )
    args = parser.parse_args(argv)
    if args.write_fleet is not None:
        write_fleet(args.write_fleet)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="kubevc-demo-"))
    fleet = tmp / FLEET_NAME
    try:
        code = build(fleet, checkov=not args.no_checkov)
        click.secho("\n==> git log --oneline", fg="cyan", bold=True)
        click.echo(
            subprocess.run(["git", "log", "--oneline"], cwd=fleet, capture_output=True, text=True).stdout
        )
        click.secho(
            "demo fleet: OK" if code == 0 else f"demo fleet: validate exited {code}",
            fg="green" if code == 0 else "red",
            bold=True,
        )
        if args.keep:
            click.echo(f"fleet repo kept at {fleet}")
        return code
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
