"""The ``flux`` check of a cluster Flux was bootstrapped into: its sync must follow the fleet.

``flux bootstrap git --path=clusters/<name>`` writes its own ``gotk-sync.yaml`` (see
:mod:`kubevc.generator.repo` ``bootstrap_owned_folders``); kubevc-gen leaves that folder alone, so
validate checks that the GitRepository and Kustomization named ``flux-system`` there point at the
URL, branch and path the region spec (or, for the hub, the fleet config) says.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..repo import BOOTSTRAP_COMPONENTS, flux_system_folder
from ._docs import load_docs
from ._report import Report

FLUX_NS = "flux-system"


def check_bootstrap_sync(root: Path, cluster: str, git_url: str, branch: str, report: Report) -> None:
    """Findings (check ``flux``) when bootstrap's sync of ``cluster`` points elsewhere; nothing
    when ``clusters/<cluster>/flux-system`` is not bootstrap's."""
    folder = flux_system_folder(cluster)
    if not (root / folder / BOOTSTRAP_COMPONENTS).is_file():
        return
    rel = f"{folder}/gotk-sync.yaml"
    try:
        docs = load_docs((root / rel).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        report.add(cluster, "flux", rel, "gotk-sync.yaml", f"cannot read bootstrap's sync: {exc}")
        return
    found = {
        str(d.get("kind")): d
        for d in docs
        if (d.get("metadata") or {}).get("name") == FLUX_NS
        and (d.get("metadata") or {}).get("namespace") == FLUX_NS
    }
    repo, sync = found.get("GitRepository"), found.get("Kustomization")
    if repo is None:
        report.add(cluster, "flux", rel, "GitRepository/flux-system/flux-system", "missing")
    else:
        spec = repo.get("spec") or {}
        ref = spec.get("ref") or {}
        if spec.get("url") != git_url:
            report.add(
                cluster,
                "flux",
                rel,
                "GitRepository/flux-system/flux-system",
                f"bootstrap's url {spec.get('url')!r} is not the fleet's {git_url!r} (git.url); "
                "bootstrap again with --url or change the spec",
            )
        if ref.get("branch") != branch:
            report.add(
                cluster,
                "flux",
                rel,
                "GitRepository/flux-system/flux-system",
                f"bootstrap's branch {ref.get('branch')!r} is not the fleet's {branch!r} (git.branch)",
            )
    if sync is None:
        report.add(cluster, "flux", rel, "Kustomization/flux-system/flux-system", "missing")
    else:
        path = str((sync.get("spec") or {}).get("path", "")).removeprefix("./").rstrip("/")
        if path != f"clusters/{cluster}":
            report.add(
                cluster,
                "flux",
                rel,
                "Kustomization/flux-system/flux-system",
                f"bootstrap's path {path!r} is not clusters/{cluster}; "
                f"bootstrap with --path=clusters/{cluster}",
            )
