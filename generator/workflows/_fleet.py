"""Workflows of the fleet repo itself: ``init``, ``region add/set/remove``, ``render``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import render
from ..errors import SpecError
from ..render import plan_remove_region, plan_render, plan_with_regions
from ..repo import (
    Change,
    ChangeOptions,
    ChangeResult,
    Fleet,
    apply_assignments,
    apply_change,
    check_age_key_path,
    check_age_recipient,
    check_value_overrides,
    format_validation_error,
    load_region,
    merge_values,
    new_age_key,
    parse_region,
    region_path,
)
from ..repo import init_fleet as scaffold_fleet
from ..spec import FLEET_MARKER, HUB_FILE, RegionSpec, check_git_url


def write_regions(
    fleet: Fleet, specs: list[RegionSpec], message: str, options: ChangeOptions | None = None
) -> ChangeResult:
    """Validate, write the regions' files and re-render, then commit: one mutating operation."""
    change = plan_with_regions(fleet, list(specs), message=message)
    return apply_change(fleet, change, options or ChangeOptions())


def _initial_tree(fleet: Fleet) -> Change:
    # looked up on the package at call time, so a test can make rendering fail (rollback test)
    return render.plan_render(fleet, "init", regions=[])


def init_fleet(
    path: Path,
    *,
    git_url: str,
    branch: str,
    name: str | None = None,
    namespace: str = "kubevc",
    age_recipient: str = "",
    force: bool = False,
    age_key_file: Path | None = None,
    kubevc_source: str | None = None,
) -> str:
    """Scaffold a fleet repo in ``path`` with the rendered shared tree; return the first commit.

    ``age_key_file``: make a new age key there (outside the repo, 0600) and use its public key as
    ``.sops.yaml``'s recipient; the file is written only once the fleet is committed.
    """
    check_git_url(git_url, "--git-url")
    key = None
    if age_key_file is not None:
        if age_recipient:
            raise SpecError("give --age-recipient or --age-key-file, not both")
        age_key_file = check_age_key_path(age_key_file, path)
        key = new_age_key()
        age_recipient = key.public
    elif age_recipient:
        check_age_recipient(age_recipient)
    commit = scaffold_fleet(
        path,
        _initial_tree,
        git_url=git_url,
        branch=branch,
        name=name,
        namespace=namespace,
        age_recipient=age_recipient,
        force=force,
        kubevc_source=kubevc_source,
    )
    if key is not None and age_key_file is not None:
        key.write(age_key_file)
    return commit


# --nfs-server, --nfs-path, --iscsi-portal, --iscsi-iqn, --iscsi-lun
StorageOptions = tuple[str | None, str | None, str | None, str | None, int | None]


def storage_from_options(
    nfs_server: str | None,
    nfs_path: str | None,
    iscsi_portal: str | None,
    iscsi_iqn: str | None,
    iscsi_lun: int | None,
) -> dict[str, Any]:
    """The ``storage`` key of a new region from the NFS or iSCSI options (exactly one kind)."""
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


def validate_new_region(data: dict[str, Any], filename: str) -> RegionSpec:
    try:
        return RegionSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, filename)) from None


def add_region(
    fleet: Fleet,
    name: str,
    *,
    api_endpoint: str,
    distribution: str,
    archs: tuple[str, ...],
    storage: StorageOptions,
    monitoring: bool,
    git_url: str | None,
    git_branch: str | None,
    optional: dict[str, str | None],
    options: ChangeOptions,
) -> ChangeResult:
    """``region add``: a new ``regions/<name>/region.yaml`` and its part of the tree, one commit.

    ``storage`` (NFS server and path, iSCSI portal, IQN and LUN) is checked after the region name
    and the fleet, as the command always did; ``optional`` holds the camelCase keys
    written only when given (kubeContext, clusterName, podCidr, serviceCidr).
    """
    if (fleet.root / "regions" / name).exists():  # a region, or a folder in its way
        raise SpecError(f"region {name!r} already exists (regions/{name}/); use `kubevc-gen region set`")
    cfg = fleet.config
    data: dict[str, Any] = {
        "name": name,
        "apiEndpoint": api_endpoint,
        "distribution": distribution,
        "architectures": list(archs) or ["amd64"],
        "storage": storage_from_options(*storage),
        "monitoring": monitoring,
        "git": {"url": git_url or cfg.git_url, "branch": git_branch or cfg.branch},
    }
    for key, value in optional.items():
        if value is not None:
            data[key] = value
    check_git_url(data["git"]["url"], "--git-url" if git_url else f"{FLEET_MARKER}: gitUrl")
    spec = validate_new_region(data, f"regions/{name}/region.yaml")
    message = f"region add {name} ({spec.distribution}, {', '.join(spec.architectures)})"
    change = plan_with_regions(fleet, [spec], message)
    return apply_change(fleet, change, options)


def set_region_keys(
    fleet: Fleet,
    name: str,
    assignments: list[str],
    options: ChangeOptions,
    values_files: Sequence[tuple[str, dict[str, Any]]] = (),
) -> ChangeResult:
    """``region set``: dotted KEY=VALUE assignments on the region file (comments kept), one commit.

    ``values_files``: (chart, values) merged into ``values.<chart>`` first (``--values-file``);
    every ``values.<chart>`` override is checked against that chart before anything is written.
    """
    load_region(fleet.root, name)  # the current file must be valid to start from
    path = region_path(fleet.root, name)
    rel = path.relative_to(fleet.root).as_posix()
    text = path.read_text(encoding="utf-8")
    for chart, data in values_files:
        text = merge_values(text, chart, data, rel)
    text = apply_assignments(text, assignments, rel) if assignments else text
    spec, _ = parse_region(text, rel)
    if spec.name != name:
        raise SpecError(f"{rel}: name cannot be changed with region set (add a new region instead)")
    check_git_url(spec.git.url, f"{rel}: git.url")
    problems = check_value_overrides(spec)
    if problems:
        raise SpecError(problems)
    keys = ", ".join(
        [a.split("=", 1)[0] for a in assignments] + [f"values.{c} (file)" for c, _ in values_files]
    )
    change = plan_with_regions(fleet, [spec], f"region set {name} {keys}", texts={name: text})
    return apply_change(fleet, change, options)


def remove_region(fleet: Fleet, name: str, options: ChangeOptions) -> ChangeResult:
    """``region remove``: its spec, clusters/NAME and apps/NAME, one commit."""
    if name not in fleet.region_names():
        raise SpecError(f"region {name!r} not found (no regions/{name}/region.yaml)")
    change = plan_remove_region(fleet, name, f"region remove {name}")
    return apply_change(fleet, change, options)


def plan_full_render(fleet: Fleet) -> Change:
    """``render`` (and ``render --check``): the whole tree against what is on disk."""
    return plan_render(fleet, "render")


def plan_regions_render(fleet: Fleet, names: Sequence[str]) -> Change:
    """``render --selector``: only the files of regions ``names`` (their clusters/, apps/ and
    infrastructure/ folders, accelerators included); shared files and other regions wait for a
    full ``render``."""
    change = plan_render(fleet, f"render {', '.join(names)}")
    prefixes = tuple(f"{folder}/" for name in names for folder in render.region_folders(name))
    change.files = {rel: data for rel, data in change.files.items() if rel.startswith(prefixes)}
    change.render_state = None  # the other regions and the shared files are not written
    return change


# What a render reads that an operator edits by hand: committed with the files rendered from them.
RENDER_INPUTS = ("regions/*/region.yaml", HUB_FILE, FLEET_MARKER, "models/*/labels.txt")


def render_inputs(fleet: Fleet) -> list[str]:
    """The spec files a render reads, on disk or in git (a deleted region's file included)."""
    found = {
        p.relative_to(fleet.root).as_posix() for pattern in RENDER_INPUTS for p in fleet.root.glob(pattern)
    }
    tracked = fleet.git.run("ls-files", "-z", "--", *RENDER_INPUTS, check=False).split("\0")
    return sorted(found | {p for p in tracked if p})


def render_fleet(fleet: Fleet, change: Change, options: ChangeOptions) -> ChangeResult:
    """``render``: commit the planned render, and the spec edits it rendered from, in one commit."""
    files = change.effective(fleet.root)
    change.message = f"render: {len(files)} generated file(s) updated"
    change.include = render_inputs(fleet)
    return apply_change(fleet, change, options)
