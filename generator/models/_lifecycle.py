"""The model lifecycle as a state machine on region specs: promote, canary share, rollback.

Version labels and policy: while a canary runs the model's ``versionPolicy`` is ``specific`` with
the stable and the canary version loaded; promoting to stable keeps the earlier stable version in
``stableHistory`` (region.yaml), which a rollback pops. While a model has both a ``stable`` and a
``canary`` label, rendering gives its gateway model ``canary: {label: canary, percent: P}`` with
P = ``canaryPercent`` (region.yaml; unset = 0, everyone on stable).

Every function here returns new specs and a one-line description of the change (for the commit
message); nothing is written. :mod:`kubevc.generator.workflows` turns them into one commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from ..errors import SpecError
from ..repo import Fleet, format_validation_error
from ..spec import ModelSpec, RegionSpec, check_name
from . import _store as modelstore

LABELS = ("stable", "canary")
Progress = Callable[[str], None]


def find_model(spec: RegionSpec, name: str) -> ModelSpec | None:
    return next((m for m in spec.models if m.name == name), None)


def regions_for(
    fleet: Fleet, name: str, regions: Sequence[str], *, all_regions: bool = False
) -> list[RegionSpec]:
    """The regions a command acts on: the ones named (each must exist) or every one with the model."""
    known = fleet.region_names()
    for r in regions:
        check_name(r)
        if r not in known:
            raise SpecError(
                f"region {r!r} not found (no regions/{r}/region.yaml; regions: {', '.join(known)})"
            )
    if regions:
        return [fleet.load(r) for r in dict.fromkeys(regions)]
    if all_regions:
        return fleet.load_all()
    with_model = [s for s in fleet.load_all() if find_model(s, name) is not None]
    if not with_model:
        raise SpecError(f"model {name!r} is not registered in any region (kubevc-gen model add {name} ...)")
    return with_model


def model_in(spec: RegionSpec, name: str) -> ModelSpec:
    model = find_model(spec, name)
    if model is None:
        have = ", ".join(m.name for m in spec.models) or "none"
        raise SpecError(f"model {name!r} is not registered in region {spec.name} (models: {have})")
    return model


def replace_model(spec: RegionSpec, model: ModelSpec) -> RegionSpec:
    models = [model if m.name == model.name else m for m in spec.models]
    return spec.model_copy(update={"models": models})


def revalidate(spec: RegionSpec) -> RegionSpec:
    """``spec`` validated again as a whole (a ``model_copy`` skips the cross-field checks)."""
    try:
        return RegionSpec.model_validate(spec.model_dump(by_alias=True))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, f"regions/{spec.name}/region.yaml")) from None


# --------------------------------------------------------------------------- store access


@contextmanager
def open_region_store(
    regions: Sequence[RegionSpec], store: str | None, via_host: str | None, progress: Progress
) -> Iterator[Any]:
    """The model store of ``regions``: ``store`` locally, or on ``via_host`` over SSH."""
    export_roots = {r.storage.nfs.path if r.storage.nfs else None for r in regions}
    if via_host is not None and len(export_roots) > 1:
        names = ", ".join(r.name for r in regions)
        raise SpecError(f"regions {names} use different model stores: pass --region to pick one")
    export_root = next(iter(export_roots)) if export_roots else None
    host_data: dict[str, Any] = {}
    for r in regions:
        for n in r.nodes:
            if n.host == via_host:
                host_data = {"ssh_user": n.ssh_user, "ssh_port": n.ssh_port, "ssh_key": n.ssh_key}
    if via_host is not None:
        progress(f"connecting to {via_host} (pyinfra over SSH)")
    with modelstore.open_store(store, via_host, export_root, host_data) as opened:
        yield opened


def model_folder_of(models: Sequence[ModelSpec], name: str) -> str:
    """The one store folder of model ``name`` in the chosen regions."""
    folders = {modelstore.model_folder(m.base_path) for m in models}
    if len(folders) > 1:
        raise SpecError(f"model {name!r} has different basePaths in the chosen regions: pass --region")
    return folders.pop()


def check_published(
    specs: Sequence[RegionSpec],
    name: str,
    wanted: int,
    store: str | None,
    via_host: str | None,
    progress: Progress,
) -> None:
    """A :class:`SpecError` unless version ``wanted`` of ``name`` is in the store."""
    folder = model_folder_of([model_in(s, name) for s in specs], name)
    with open_region_store(specs, store, via_host, progress) as opened:
        published = modelstore.versions(opened, folder)[0]
    if wanted not in published:
        have = ", ".join(map(str, published)) or "none"
        raise SpecError(
            f"version {wanted} of {name} is not published in the store {opened.where}:{opened.root} "
            f"(published: {have}); run `kubevc-gen model publish {name} DIR --version {wanted}` first"
        )


# --------------------------------------------------------------------------- transitions


def share(percent: int | None) -> str:
    return f"{percent or 0}%"


def labels_text(m: ModelSpec) -> str:
    text = ", ".join(f"{k}={v}" for k, v in sorted(m.version_labels.items())) or "none"
    if m.has_canary:
        text += f" (canary share {share(m.canary_percent)})"
    return text


def promoted(
    model_spec: ModelSpec, version: int, label: str, region: str, canary_percent: int | None = None
) -> tuple[ModelSpec, str]:
    """``model_spec`` with label ``label`` (stable|canary) on ``version``, and what changed."""
    labels = dict(model_spec.version_labels)
    history = list(model_spec.stable_history or [])
    stable = labels.get("stable")
    old_canary = labels.get("canary")
    old_share = model_spec.canary_percent if model_spec.has_canary else None
    new_share = model_spec.canary_percent
    if label == "canary":
        if stable == version:
            raise SpecError(f"region {region}: version {version} is already stable; a canary must differ")
        if canary_percent is not None and stable is None:
            raise SpecError(
                f"region {region}: {model_spec.name} has no stable version, so there is no traffic to "
                f"split; promote one first (kubevc-gen model promote {model_spec.name} --version N "
                "--label stable)"
            )
        labels["canary"] = version
        if old_canary != version:
            new_share = canary_percent  # a new canary starts at the share given (unset: 0%, all on stable)
        elif canary_percent is not None:
            new_share = canary_percent
        if old_canary == version:
            what = f"canary stays {version}"
        else:
            what = f"canary {old_canary} -> {version}" if old_canary else f"canary -> {version}"
        notes = [f"stable stays {stable}"] if stable else []
        if stable is not None:
            if old_canary is None:
                notes.append(f"share {share(new_share)}")
            elif (old_share or 0) != (new_share or 0):
                notes.append(f"share {share(old_share)} -> {share(new_share)}")
        if notes:
            what += f" ({', '.join(notes)})"
    else:
        if stable == version:
            raise SpecError(f"region {region}: version {version} is already stable")
        if stable is not None:
            history.append(stable)
        labels["stable"] = version
        what = f"stable {stable} -> {version}" if stable else f"stable -> {version}"
        if old_canary == version:
            del labels["canary"]  # the canary graduated: its share goes with it
            new_share = None
            what += f" (canary {version} graduated" + (
                f", share {share(old_share)} -> off)" if old_share else ")"
            )
    loaded = sorted(set(labels.values()))
    return (
        model_spec.model_copy(
            update={
                "version_labels": labels,
                "version_policy": "specific",
                "versions": loaded,
                "stable_history": history or None,
                "canary_percent": new_share,
            }
        ),
        what,
    )


def rolled_back(m: ModelSpec, region: str) -> tuple[ModelSpec, str, int]:
    """``m`` with label stable back on the version before, what changed, and that version."""
    stable = m.version_labels.get("stable")
    history = [v for v in (m.stable_history or []) if v != stable]
    if stable is None or not history:
        raise SpecError(
            f"region {region}: {m.name} has no earlier stable version to roll back to "
            f"(stable: {stable or 'none'}; promote one with `kubevc-gen model promote`)"
        )
    previous = history.pop()
    labels = dict(m.version_labels)
    labels["stable"] = previous
    what = f"stable {stable} -> {previous}"
    canary = labels.get("canary")
    if canary == previous:  # the canary's version is stable again: nothing left to split
        del labels["canary"]
        what += f" (canary {canary} ended" + (
            f", share {share(m.canary_percent)} -> off)" if m.canary_percent else ")"
        )
    elif canary is not None and m.canary_percent:  # a rollback stops the canary's traffic
        what += f" (canary {canary} share {share(m.canary_percent)} -> 0%)"
    new_model = m.model_copy(
        update={
            "version_labels": labels,
            "version_policy": "specific",
            "versions": sorted(set(labels.values())),
            "stable_history": history or None,
            "canary_percent": None,
        }
    )
    return new_model, what, previous


def with_canary_share(m: ModelSpec, region: str, percent: int) -> tuple[ModelSpec | None, str]:
    """``m`` with its running canary's traffic share at ``percent`` (None: unchanged), and what changed."""
    if not m.has_canary:
        missing = "stable" if "canary" in m.version_labels else "canary"
        raise SpecError(
            f"region {region}: {m.name} has no {missing} version, so there is no canary to share "
            f"traffic with (labels: {labels_text(m)}); "
            f"run `kubevc-gen model promote {m.name} --version N --label {missing}` first"
        )
    old = m.canary_percent or 0
    if old == percent:
        return None, f"{region}: {percent}% (unchanged)"
    return m.model_copy(update={"canary_percent": percent}), f"{region}: {old}% -> {percent}%"
