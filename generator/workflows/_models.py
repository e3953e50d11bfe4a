"""Workflows of the model lifecycle that change region specs: ``model add/promote/rollback/canary``.

Each goes through the one mutating path (:func:`kubevc.generator.repo.apply_change`: validate,
write atomically, one commit, or ``--branch``/``--no-commit``/``--dry-run``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

from ..errors import SpecError
from ..models import (
    LAYOUT_FILES,
    MOUNT_PATH,
    Wire,
    check_published,
    find_model,
    model_folder,
    model_folder_of,
    model_in,
    open_region_store,
    promoted,
    regions_for,
    replace_model,
    restore_runtime_config,
    revalidate,
    rolled_back,
    runtime_config_changes,
    with_canary_share,
    write_runtime_config,
)
from ..render import plan_with_regions
from ..repo import ChangeOptions, ChangeResult, Fleet, apply_change, profile
from ..spec import DEFAULT_RUNTIME, ModelAccelerator, ModelSpec, RegionSpec, Runtime, TensorSpec, memory_bytes

Progress = Callable[[str], None]


def add_model(
    fleet: Fleet,
    name: str,
    *,
    regions: Sequence[str],
    all_regions: bool,
    framework: str,
    base_path: str | None,
    profile_name: str,
    signature: str,
    labels_file: Path | None,
    options: ChangeOptions,
    wire: Wire | None = None,
    accelerator: str | None = None,
    min_memory: str | None = None,
    runtime: str | None = None,
    serving_group: str | None = None,
    inputs: Sequence[TensorSpec] = (),
    outputs: Sequence[TensorSpec] = (),
) -> ChangeResult:
    """``model add``: register ``name`` in regions (and copy its label file in), one commit.

    ``wire``: the image input's gateway -> server form (:func:`kubevc.generator.models.pick_serving`).
    ``runtime`` None (or tfserving) leaves the key out of region.yaml (TF Serving, as before).
    """
    specs = regions_for(fleet, name, regions, all_regions=all_regions)
    if not specs:
        raise SpecError("the fleet has no regions yet (kubevc-gen region add ...)")
    prof = profile(profile_name)
    if wire is not None and prof.input.kind != "image":
        raise SpecError(
            f"--wire {wire}: profile {prof.name!r} has no image input (wire forms are for images)"
        )
    base = base_path or f"{MOUNT_PATH}/{name}"
    extra: dict[str, bytes] = {}
    labels_rel = None
    if labels_file is not None:
        data = labels_file.read_bytes()
        try:
            lines = [x for x in data.decode("utf-8").splitlines() if x.strip()]
        except UnicodeDecodeError:
            raise SpecError(f"--labels {labels_file}: not UTF-8 text") from None
        if not lines:
            raise SpecError(f"--labels {labels_file}: no labels in the file")
        if prof.output.postprocess == "none":
            raise SpecError(f"--labels: profile {prof.name!r} has no class output to label")
        labels_rel = f"models/{name}/labels.txt"
        extra[labels_rel] = data if data.endswith(b"\n") else data + b"\n"
    updated: list[RegionSpec] = []
    for spec in specs:
        if find_model(spec, name) is not None:
            raise SpecError(
                f"model {name!r} is already registered in region {spec.name}; "
                "change it with `kubevc-gen region set` or promote versions with `model promote`"
            )
        new = ModelSpec(
            name=name,
            base_path=base,
            signature=signature,
            profile=prof.name,
            framework="tensorflow" if framework == "tensorflow" else None,
            labels_file=labels_rel,
            wire=wire,
            accelerator=cast(ModelAccelerator | None, accelerator),
            min_memory=min_memory,
            runtime=None if runtime in (None, DEFAULT_RUNTIME) else cast(Runtime, runtime),
            serving_group=serving_group,
            inputs=list(inputs) or None,
            outputs=list(outputs) or None,
        )
        updated.append(revalidate(spec.model_copy(update={"models": [*spec.models, new]})))
    where = ", ".join(s.name for s in updated)
    message = f"model add {name} ({prof.name}, {base}) to {where}"
    change = plan_with_regions(fleet, updated, message, pending=extra)
    change.files.update(extra)
    return apply_change(fleet, change, options)


def check_new_model(
    name: str, regions: Sequence[str], all_regions: bool, profile_name: str, base_path: str | None
) -> None:
    """``model add``'s checks that need no fleet (run before the fleet is opened)."""
    if bool(regions) == all_regions:
        raise SpecError("say where: --region R (repeatable) or --all-regions")
    profile(profile_name)
    model_folder(base_path or f"{MOUNT_PATH}/{name}")  # must be inside the store mount


def _relabel(
    specs: Sequence[RegionSpec],
    name: str,
    transition: Callable[[ModelSpec, str], tuple[ModelSpec, str]],
) -> tuple[list[RegionSpec], list[str]]:
    """The regions ``specs`` with ``transition`` applied to model ``name``, and one line per region."""
    updated: list[RegionSpec] = []
    changes: list[str] = []
    for spec in specs:
        new_model, what = transition(model_in(spec, name), spec.name)
        updated.append(revalidate(replace_model(spec, new_model)))
        changes.append(f"{spec.name}: {what}")
    return updated, changes


def _commit_relabel(
    fleet: Fleet,
    name: str,
    updated: Sequence[RegionSpec],
    message: str,
    *,
    check_store: Callable[[], None] | None,
    store: str | None,
    via_host: str | None,
    options: ChangeOptions,
    progress: Progress,
) -> ChangeResult:
    """The one-commit end of ``promote`` and ``rollback``: the store check (unless skipped), then
    apply. A Triton or MLServer model also gets its runtime's file in the store rewritten to match
    (:func:`kubevc.generator.models.runtime_config_changes`): after every check, before the commit,
    and put back when the commit fails; ``--dry-run`` prints the diff and writes nothing."""
    if check_store is None:
        progress("not checking the store (--skip-store-check)")
    else:
        check_store()
    change = plan_with_regions(fleet, updated, message)
    served = [(s.name, model_in(s, name)) for s in updated]
    served = [(region, m) for region, m in served if m.serving_runtime in LAYOUT_FILES]
    if not served:
        return apply_change(fleet, change, options)
    runtime = served[0][1].serving_runtime
    if check_store is None:
        progress(
            f"warning: {name} runs {runtime}, whose {LAYOUT_FILES[runtime]} in the store is NOT rewritten "
            "(--skip-store-check): its server keeps loading the versions that file names"
        )
        return apply_change(fleet, change, options)
    folder = model_folder_of([m for _r, m in served], name)
    with open_region_store(updated, store, via_host, progress) as opened:
        rewrites = runtime_config_changes(opened, served, folder)
        if options.dry_run:
            for rewrite in rewrites:
                progress(f"dry run: would rewrite {rewrite.path} in the store:\n{rewrite.diff().rstrip()}")
            return apply_change(fleet, change, options)
        write_runtime_config(opened, rewrites, progress)
        if rewrites and (options.branch is not None or options.no_commit):
            # the store is outside git: it cannot wait for the review like the spec does
            progress(
                f"warning: the store's {LAYOUT_FILES[runtime]} of {name} is rewritten now, before the change "
                "reaches the fleet's branch: a server that restarts meanwhile loads it, and a dropped change "
                f"leaves it so until the next promote or rollback of {name}"
            )
        try:
            return apply_change(fleet, change, options)
        except BaseException:
            restore_runtime_config(opened, rewrites, progress)
            raise


def promote_model(
    fleet: Fleet,
    name: str,
    *,
    version: int,
    label: str,
    canary_percent: int | None,
    regions: Sequence[str],
    store: str | None,
    via_host: str | None,
    skip_store_check: bool,
    options: ChangeOptions,
    progress: Progress,
) -> ChangeResult:
    """``model promote``: label stable|canary of ``name`` on ``version`` in every chosen region."""
    specs = regions_for(fleet, name, regions)
    updated, changes = _relabel(
        specs, name, lambda m, region: promoted(m, version, label, region, canary_percent)
    )

    def check_store() -> None:
        check_published(specs, name, version, store, via_host, progress)

    message = f"model promote {name}: {label} -> {version} ({'; '.join(changes)})"
    return _commit_relabel(
        fleet,
        name,
        updated,
        message,
        check_store=None if skip_store_check else check_store,
        store=store,
        via_host=via_host,
        options=options,
        progress=progress,
    )


def rollback_model(
    fleet: Fleet,
    name: str,
    *,
    regions: Sequence[str],
    store: str | None,
    via_host: str | None,
    skip_store_check: bool,
    options: ChangeOptions,
    progress: Progress,
) -> ChangeResult:
    """``model rollback``: label stable of ``name`` back to the version before, one commit."""
    specs = regions_for(fleet, name, regions)
    targets: set[int] = set()

    def back(model: ModelSpec, region: str) -> tuple[ModelSpec, str]:
        new_model, what, previous = rolled_back(model, region)
        targets.add(previous)
        return new_model, what

    updated, changes = _relabel(specs, name, back)

    def check_store() -> None:
        if store is not None or via_host is not None:  # a rollback checks only a store it was given
            for v in sorted(targets):
                check_published(specs, name, v, store, via_host, progress)

    message = f"model rollback {name}: {'; '.join(changes)}"
    return _commit_relabel(
        fleet,
        name,
        updated,
        message,
        check_store=None if skip_store_check else check_store,
        store=store,
        via_host=via_host,
        options=options,
        progress=progress,
    )


def set_canary_share(
    fleet: Fleet, name: str, *, percent: int, regions: Sequence[str], options: ChangeOptions
) -> ChangeResult:
    """``model canary``: the traffic share of ``name``'s running canary, one commit."""
    specs = regions_for(fleet, name, regions)
    updated: list[RegionSpec] = []
    changes: list[str] = []
    for spec in specs:
        new_model, what = with_canary_share(model_in(spec, name), spec.name, percent)
        changes.append(what)
        if new_model is not None:
            updated.append(revalidate(replace_model(spec, new_model)))
    message = f"model canary {name}: {'; '.join(changes)}"
    return apply_change(fleet, plan_with_regions(fleet, updated, message), options)


def check_min_memory(min_memory: str | None) -> None:
    """``model add --min-memory``: a memory quantity (``4Gi``, ``512Mi``, ``8G``), else SpecError."""
    if min_memory is None:
        return
    try:
        if memory_bytes(min_memory) == 0 or min_memory.startswith("0"):
            raise ValueError(f"{min_memory!r} must be more than 0")
    except ValueError as exc:
        raise SpecError(f"--min-memory {exc}") from None
