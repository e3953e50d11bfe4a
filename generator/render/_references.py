"""A render never commits a kustomization that names a file missing from the tree.

``kubectl kustomize`` (and so Flux) fails on HEAD when a ``kustomization.yaml`` lists a file that
is not committed: a SOPS file left untracked, a secret a region spec names but nobody created.
:func:`missing_references` finds those entries; :func:`creating_command` says how each is made.
Only the files no kustomization of the change itself provides (:func:`outside`) are looked up in
git, so checking a change costs what the change holds, not what the fleet holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
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


# libyaml's loader when PyYAML has it: a full render of hundreds of regions parses thousands
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _file_entries(kustomization: bytes) -> list[str]:
    try:
        data = yaml.load(kustomization, Loader=_LOADER)  # noqa: S506  (a safe loader)
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict):
        return []
    entries = [e for e in data.get("resources") or [] if isinstance(e, str)]
    # only files: folders (../base/x, flux-system) and remote targets are kustomize's to resolve
    return [e for e in entries if e.endswith((".yaml", ".yml", ".json")) and "://" not in e]


Reference = tuple[str, str, str]  # (the kustomization.yaml, the entry it lists, the file it names)


def references(files: Mapping[str, bytes | None]) -> list[Reference]:
    """Every file entry of every ``kustomization.yaml`` in ``files`` (deleted ones left out)."""
    found: list[Reference] = []
    for rel, data in sorted(files.items()):
        if data is None or PurePosixPath(rel).name != "kustomization.yaml":
            continue
        folder = PurePosixPath(rel).parent
        found.extend((rel, entry, (folder / entry).as_posix()) for entry in _file_entries(data))
    return found


def outside(files: Mapping[str, bytes | None], refs: Iterable[Reference]) -> list[str]:
    """The files ``refs`` name that ``files`` neither writes nor deletes: only git can tell
    whether they exist (the caller asks it about these alone, not the whole tree)."""
    return sorted({target for _rel, _entry, target in refs if target not in files})


def missing_references(
    files: Mapping[str, bytes | None], tracked: Set[str], refs: Iterable[Reference] | None = None
) -> list[str]:
    """One problem line per file a kustomization in ``files`` lists that is neither in ``files``
    (the same change) nor ``tracked`` (committed or staged), naming the command that creates it.

    ``refs``: :func:`references` of ``files`` when the caller has them already."""
    problems: list[str] = []
    for rel, entry, target in references(files) if refs is None else refs:
        if files.get(target) is not None or (target not in files and target in tracked):
            continue
        problems.append(
            f"{rel} lists {entry}, but {target} is not in the fleet repo; create it with "
            f"`{creating_command(target)}`"
        )
    return problems
