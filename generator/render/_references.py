"""A render never commits a kustomization that names a file missing from the tree.

``kubectl kustomize`` (and so Flux) fails on HEAD when a ``kustomization.yaml`` lists a file that
is not committed: a SOPS file left untracked, a secret a region spec names but nobody created.
:func:`missing_references` finds those entries; :func:`creating_command` says how each is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from pathlib import PurePosixPath

import yaml

REGION_SECRET = re.compile(r"^apps/(?P<region>[^/]+)/secrets/(?P<name>[^/]+)\.sops\.yaml$")
AGENT_SOPS = re.compile(r"^infrastructure/(agents/[^/]+|hub/controllers)/[^/]+\.sops\.yaml$")


def creating_command(rel: str) -> str:
    """The command that creates the file ``rel`` of the fleet repo."""
    secret = REGION_SECRET.match(rel)
    if secret:
        return (
            f"kubevc-gen secret set {secret['region']} {secret['name']} --from-literal KEY=VALUE "
            "(or --from-file KEY=PATH)"
        )
    if AGENT_SOPS.match(rel):
        return "kubevc-gen hub set --remote-write-username USER --remote-write-password-file FILE"
    return f"git add {rel}"


def _file_entries(kustomization: bytes) -> list[str]:
    try:
        data = yaml.safe_load(kustomization)
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict):
        return []
    entries = [e for e in data.get("resources") or [] if isinstance(e, str)]
    # only files: folders (../base/x, flux-system) and remote targets are kustomize's to resolve
    return [e for e in entries if e.endswith((".yaml", ".yml", ".json")) and "://" not in e]


def missing_references(files: Mapping[str, bytes | None], tracked: Set[str]) -> list[str]:
    """One problem line per file a kustomization in ``files`` lists that is neither in ``files``
    (the same change) nor ``tracked`` (committed or staged), naming the command that creates it."""
    problems: list[str] = []
    for rel, data in sorted(files.items()):
        if data is None or PurePosixPath(rel).name != "kustomization.yaml":
            continue
        folder = PurePosixPath(rel).parent
        for entry in _file_entries(data):
            target = (folder / entry).as_posix()
            if files.get(target) is not None or (target not in files and target in tracked):
                continue
            problems.append(
                f"{rel} lists {entry}, but {target} is not in the fleet repo; create it with "
                f"`{creating_command(target)}`"
            )
    return problems
