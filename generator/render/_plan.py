"""Planning a render against the fleet repo: read the inputs, render, and add deletions of stale
generated files. The result is a :class:`~kubevc.generator.repo.Change` for
:func:`~kubevc.generator.repo.apply_change`; nothing is written here.

Generated YAML starts with :data:`GENERATED_MARK`, which is how stale generated files are told
apart from files an operator added (for example SOPS-encrypted secrets under ``apps/<region>/``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from ..errors import SpecError
from ..repo import Change, Fleet, Git, bootstrap_owned_folders, region_to_yaml, under_folders
from ..spec import HUB_NAME, HubSpec, RegionSpec
from ._apps import APPS
from ._cache import RenderCache
from ._common import GENERATED_MARK
from ._inputs import FROM_REPO, FromRepo, read_inputs
from ._references import missing_references
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


def _existing_generated(root: Path) -> set[str]:
    found: set[str] = set()
    for top in GENERATED_ROOTS:
        base = root / top
        if base.is_dir():
            for path in base.rglob("*"):
                if path.is_file() and _is_generated(path):
                    found.add(path.relative_to(root).as_posix())
    charts = root / "charts"
    for app in APPS:
        if (charts / app).is_dir():
            found.update(p.relative_to(root).as_posix() for p in (charts / app).rglob("*") if p.is_file())
    if (charts / "VERSIONS.yaml").is_file():
        found.add("charts/VERSIONS.yaml")
    return found


def plan_render(
    fleet: Fleet,
    message: str = "render",
    regions: Sequence[RegionSpec] | None = None,
    *,
    hub: HubSpec | FromRepo | None = FROM_REPO,
    pending: Mapping[str, bytes] | None = None,
) -> Change:
    """Everything ``render`` would write, plus deletions of stale generated files.

    ``hub`` and ``pending``: see :func:`~kubevc.generator.render.read_inputs`.
    """
    specs = fleet.load_all() if regions is None else list(regions)
    files: dict[str, bytes | None] = dict(desired_tree(fleet, specs, hub=hub, pending=pending))
    # `flux bootstrap` owns clusters/<name>/flux-system once it committed gotk-components.yaml there
    owned = bootstrap_owned_folders(fleet.root, [*(r.name for r in specs), HUB_NAME])
    for rel in _existing_generated(fleet.root) - set(files):
        if not under_folders(rel, owned):
            files[rel] = None
    check_references(fleet, files, pending)
    return Change(message=message, files=files)


def check_references(
    fleet: Fleet, files: Mapping[str, bytes | None], pending: Mapping[str, bytes] | None = None
) -> None:
    """Refuse (SpecError, nothing written) a render whose kustomizations name files not in the tree."""
    listed = Git(fleet.root).query("ls-files", "-z")
    tracked = {f for f in listed.stdout.split("\0") if f} if listed.returncode == 0 else set()
    problems = missing_references({**files, **(pending or {})}, tracked)
    if problems:
        raise SpecError(problems)


def plan_with_regions(
    fleet: Fleet,
    updated: Iterable[RegionSpec],
    message: str,
    texts: dict[str, str] | None = None,
    *,
    pending: Mapping[str, bytes] | None = None,
) -> Change:
    """Region files for ``updated`` plus a full re-render of the tree.

    A region's file keeps the comments and key order of its existing version; ``texts`` may give
    the exact new text of a region file (``region set`` edits the round-trip document itself);
    ``pending``: other files of the same change the render reads (``model add --labels``).
    """
    by_name = {r.name: r for r in fleet.load_all()}
    region_files: dict[str, bytes | None] = {}
    for spec in updated:
        rel = f"regions/{spec.name}/region.yaml"
        path = fleet.root / rel
        if texts and spec.name in texts:
            text = texts[spec.name]
        else:
            previous = path.read_text(encoding="utf-8") if path.is_file() else None
            text = region_to_yaml(spec, previous)
        region_files[rel] = text.encode()
        by_name[spec.name] = spec
    change = plan_render(fleet, message, list(by_name.values()), pending=pending)
    change.files.update(region_files)
    return change


def plan_remove_region(fleet: Fleet, name: str, message: str) -> Change:
    """Delete everything of region ``name`` (its spec, cluster and app folders) and re-render."""
    others = [fleet.load(n) for n in fleet.region_names() if n != name]
    change = plan_render(fleet, message, others)
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
