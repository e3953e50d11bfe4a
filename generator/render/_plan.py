"""Planning a render against the fleet repo: read the inputs, render, and add deletions of stale
generated files. The result is a :class:`~kubevc.generator.repo.Change` for
:func:`~kubevc.generator.repo.apply_change`; nothing is written here.

Generated YAML starts with :data:`GENERATED_MARK`, which is how stale generated files are told
apart from files an operator added (for example SOPS-encrypted secrets under ``apps/<region>/``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from ..errors import SpecError
from ..repo import (
    Change,
    Fleet,
    Git,
    RegionStamp,
    RenderState,
    bootstrap_owned_folders,
    file_digests,
    region_to_yaml,
    sha256_hex,
    under_folders,
)
from ..spec import FLEET_MARKER, HUB_FILE, HUB_NAME, HubSpec, RegionSpec
from ._apps import APPS
from ._cache import RENDER_CACHE_ENV, RenderCache, code_digest
from ._common import GENERATED_MARK
from ._inputs import FROM_REPO, FromRepo, read_inputs
from ._references import missing_references, outside, references
from ._tree import render_tree

GENERATED_ROOTS = ("clusters", "apps", "infrastructure")


def desired_tree(
    fleet: Fleet,
    regions: Sequence[RegionSpec],
    charts: Path | None = None,
    *,
    hub: HubSpec | FromRepo | None = FROM_REPO,
    pending: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Every generated file of ``fleet`` with ``regions``, through the render cache in ``.git/``."""
    inputs = read_inputs(fleet, regions, hub=hub, pending=pending, charts=charts)
    cache = RenderCache.load(fleet.root)
    files = render_tree(inputs, cache)
    cache.save()
    return files


def _is_generated(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(GENERATED_MARK)) == GENERATED_MARK.encode()
    except OSError:
        return False


def region_folders(name: str) -> tuple[str, ...]:
    """The folders holding region ``name``'s generated files and nothing of another region's."""
    return (
        f"clusters/{name}",
        f"apps/{name}",
        f"infrastructure/regions/{name}",
        f"infrastructure/agents/{name}",
        f"infrastructure/accelerators/{name}",
    )


def _existing_generated(root: Path, skip: Collection[str] = ()) -> set[str]:
    """Every generated file in the tree, except in the folders ``skip`` (not even listed)."""
    found: set[str] = set()
    for top in GENERATED_ROOTS:
        base = root / top
        if not base.is_dir():
            continue
        for folder, dirs, names in os.walk(base):
            rel_folder = Path(folder).relative_to(root).as_posix()
            dirs[:] = sorted(d for d in dirs if f"{rel_folder}/{d}" not in skip)
            for name in names:
                path = Path(folder) / name
                if path.is_file() and _is_generated(path):
                    found.add(f"{rel_folder}/{name}")
    charts = root / "charts"
    for app in APPS:
        if (charts / app).is_dir():
            found.update(p.relative_to(root).as_posix() for p in (charts / app).rglob("*") if p.is_file())
    if (charts / "VERSIONS.yaml").is_file():
        found.add("charts/VERSIONS.yaml")
    return found


def _render_state(
    fleet: Fleet, specs: Iterable[RegionSpec], stamps: Mapping[str, RegionStamp]
) -> RenderState:
    """What a render of ``specs`` (the regions read with ``stamps``) from the repo depends on."""
    labels = {m.labels_file for r in specs for m in r.models if m.labels_file}
    inputs = file_digests(fleet.root, sorted({FLEET_MARKER, HUB_FILE, *labels}))
    return RenderState(code_digest(), inputs, dict(stamps))


def plan_render(
    fleet: Fleet,
    message: str = "render",
    regions: Sequence[RegionSpec] | None = None,
    *,
    hub: HubSpec | FromRepo | None = FROM_REPO,
    pending: Mapping[str, bytes] | None = None,
) -> Change:
    """Everything ``render`` would write, plus deletions of stale generated files.

    ``hub`` and ``pending``: see :func:`~kubevc.generator.render.read_inputs`. Rendered from the
    repo as it is (every region read here, no other hub, nothing pending), the change records what
    it was rendered from (:class:`~kubevc.generator.repo.RenderState`).
    """
    stamps: dict[str, RegionStamp] | None = None
    if regions is None:
        specs, stamps = fleet.load_all_stamped()
    else:
        specs = list(regions)
    files: dict[str, bytes | None] = dict(desired_tree(fleet, specs, hub=hub, pending=pending))
    # `flux bootstrap` owns clusters/<name>/flux-system once it committed gotk-components.yaml there
    owned = bootstrap_owned_folders(fleet.root, [*(r.name for r in specs), HUB_NAME])
    for rel in _existing_generated(fleet.root) - set(files):
        if not under_folders(rel, owned):
            files[rel] = None
    check_references(fleet, files, pending)
    change = Change(message=message, files=files)
    if stamps is not None and hub is FROM_REPO and not pending:
        change.render_state = _render_state(fleet, specs, stamps)
    return change


def check_references(
    fleet: Fleet, files: Mapping[str, bytes | None], pending: Mapping[str, bytes] | None = None
) -> None:
    """Refuse (SpecError, nothing written) a render whose kustomizations name files not in the tree."""
    everything = {**files, **(pending or {})}
    refs = references(everything)
    tracked: set[str] = set()
    asked = outside(everything, refs)
    for i in range(0, len(asked), 500):  # only the files the change does not hold: git knows them
        literal = [f":(literal){rel}" for rel in asked[i : i + 500]]
        listed = Git(fleet.root).query("ls-files", "-z", "--", *literal)
        if listed.returncode == 0:
            tracked.update(f for f in listed.stdout.split("\0") if f)
    problems = missing_references(everything, tracked, refs)
    if problems:
        raise SpecError(problems)


def _plan_scoped(fleet: Fleet, updated: Sequence[RegionSpec], message: str) -> Change | None:
    """Only ``updated``'s files and the shared ones, when every other region and every input is as
    the last render applied to the work tree recorded (:class:`~kubevc.generator.repo.RenderState`):
    their files are what a full render would write again. None when that cannot be told (no state,
    anything changed, a monitoring hub, whose files list every region): render everything then.

    Reads, renders and checks what ``updated`` and the shared files need; of the other regions it
    reads nothing but the ``stat`` of their ``region.yaml``.
    """
    if os.environ.get(RENDER_CACHE_ENV, "1") == "0" or (fleet.root / HUB_FILE).exists():
        return None
    state = RenderState.load(fleet.root)
    if state is None:
        return None
    names = [r.name for r in updated]
    held = state.unchanged_regions(fleet.root, code_digest(), names)
    if held is None:
        return None
    files: dict[str, bytes | None] = dict(render_tree(read_inputs(fleet, updated, hub=None)))
    skip = {folder for name in held for folder in region_folders(name)}
    owned = bootstrap_owned_folders(fleet.root, [*names, HUB_NAME])
    for rel in _existing_generated(fleet.root, skip) - set(files):
        if not under_folders(rel, owned):
            files[rel] = None
    check_references(fleet, files)
    change = Change(message=message, files=files)
    labels = {m.labels_file for r in updated for m in r.models if m.labels_file}
    inputs = {**state.inputs, **file_digests(fleet.root, sorted(labels - set(state.inputs)))}
    change.render_state = RenderState(state.code, inputs, held)
    return change


def plan_with_regions(
    fleet: Fleet,
    updated: Iterable[RegionSpec],
    message: str,
    texts: dict[str, str] | None = None,
    *,
    pending: Mapping[str, bytes] | None = None,
) -> Change:
    """Region files for ``updated`` plus a re-render of the tree.

    A region's file keeps the comments and key order of its existing version; ``texts`` may give
    the exact new text of a region file (``region set`` edits the round-trip document itself);
    ``pending``: other files of the same change the render reads (``model add --labels``).
    When the rest of the fleet is as the last render left it, only ``updated``'s part of the tree
    and the shared files are rendered (:func:`_plan_scoped`); otherwise every region is.
    """
    updated = list(updated)
    region_files: dict[str, bytes | None] = {}
    written: dict[str, str] = {}
    for spec in updated:
        rel = f"regions/{spec.name}/region.yaml"
        path = fleet.root / rel
        if texts and spec.name in texts:
            text = texts[spec.name]
        else:
            previous = path.read_text(encoding="utf-8") if path.is_file() else None
            text = region_to_yaml(spec, previous)
        region_files[rel] = text.encode()
        written[spec.name] = sha256_hex(text.encode())
    change = None if pending else _plan_scoped(fleet, updated, message)
    if change is None:
        specs, stamps = fleet.load_all_stamped()
        by_name = {r.name: r for r in specs} | {r.name: r for r in updated}
        change = plan_render(fleet, message, list(by_name.values()), pending=pending)
        if not pending:
            others = {name: stamp for name, stamp in stamps.items() if name not in written}
            change.render_state = _render_state(fleet, by_name.values(), others)
    if change.render_state is not None:
        change.render_state.written = written
    change.files.update(region_files)
    return change


def plan_remove_region(fleet: Fleet, name: str, message: str) -> Change:
    """Delete everything of region ``name`` (its spec, cluster and app folders) and re-render.
    The render state is recorded as for a full render (the region's own file is not read: a
    damaged one can still be removed), so the next change of a few regions renders only those."""
    others, stamps = fleet.load_all_stamped(skip={name})
    change = plan_render(fleet, message, others)
    change.render_state = _render_state(fleet, others, stamps)
    for top in ("regions", "clusters", "apps"):
        folder = fleet.root / top / name
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file():
                    change.files[path.relative_to(fleet.root).as_posix()] = None
    for rel in list(change.files):
        parts = PurePosixPath(rel).parts
        if len(parts) > 1 and parts[0] in ("clusters", "apps") and parts[1] == name:
            change.files[rel] = None
    return change
