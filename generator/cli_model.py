"""``kubevc-gen model ...``: register, publish, promote and roll back models.

Order of use::

    kubevc-gen model add resnet50 --region busan --profile classification   # git: region spec
    kubevc-gen model publish resnet50 ./export/3 --version 3 --store /mnt/models  # store only
    kubevc-gen model promote resnet50 --version 3 --label canary --store /mnt/models  # git
    kubevc-gen model canary resnet50 --percent 10                             # git
    kubevc-gen model promote resnet50 --version 3 --label stable --store /mnt/models  # git
    kubevc-gen model rollback resnet50                                        # git

``add``, ``promote``, ``canary`` and ``rollback`` change region specs and go through the one
mutating path (:func:`kubevc.generator.gitops.apply_change`: validate, write atomically, one
commit, or ``--branch``/``--no-commit``/``--dry-run``). ``publish`` changes only the model store
(:mod:`kubevc.generator.modelstore`) and commits nothing. ``list`` changes nothing.

Version labels and policy: while a canary runs the model's ``versionPolicy`` is ``specific`` with
the stable and the canary version loaded; promoting to stable keeps the earlier stable version in
``stableHistory`` (region.yaml), which ``rollback`` pops. While a model has both a ``stable``
and a ``canary`` label, ``render`` gives its gateway model ``canary: {label: canary, percent: P}``
with P = ``canaryPercent`` (region.yaml; unset = 0, everyone on stable).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from . import modelstore
from .cli import _options, _report, get_fleet, git_options, handle_errors
from .gitops import apply_change
from .model_profiles import pending_files, profile, profile_names
from .render import plan_with_regions
from .spec import Fleet, ModelSpec, RegionSpec, SpecError, check_name

# the same settings as the rest of kubevc-gen (kept here: cli.py imports this module at its end)
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
LABELS = ("stable", "canary")


def _progress(message: str) -> None:
    click.echo(f"… {message}", err=True)


def _find(spec: RegionSpec, name: str) -> ModelSpec | None:
    return next((m for m in spec.models if m.name == name), None)


def _regions_for(
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
    with_model = [s for s in fleet.load_all() if _find(s, name) is not None]
    if not with_model:
        raise SpecError(f"model {name!r} is not registered in any region (kubevc-gen model add {name} ...)")
    return with_model


def _model_in(spec: RegionSpec, name: str) -> ModelSpec:
    model = _find(spec, name)
    if model is None:
        have = ", ".join(m.name for m in spec.models) or "none"
        raise SpecError(f"model {name!r} is not registered in region {spec.name} (models: {have})")
    return model


def _replace_model(spec: RegionSpec, model: ModelSpec) -> RegionSpec:
    models = [model if m.name == model.name else m for m in spec.models]
    return spec.model_copy(update={"models": models})


def _revalidate(spec: RegionSpec) -> RegionSpec:
    from pydantic import ValidationError

    from .spec import format_validation_error

    try:
        return RegionSpec.model_validate(spec.model_dump(by_alias=True))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, f"regions/{spec.name}/region.yaml")) from None


# --------------------------------------------------------------------------- store access


# `promote`, `rollback` and `canary` act on every region that has the model unless narrowed.
only_regions_option = click.option(
    "--region", "regions", multiple=True, metavar="R", help="Only region R (repeatable; default: all)."
)


def store_options(func: Any) -> Any:
    func = click.option(
        "--via-host",
        metavar="HOST",
        default=None,
        help="Reach the store on this host (the NFS server) over SSH with pyinfra.",
    )(func)
    func = click.option(
        "--store",
        metavar="PATH",
        default=None,
        envvar="KUBEVC_MODEL_STORE",
        help="The store root: a local/mounted path, or with --via-host a path on HOST "
        "(default there: the region's storage.nfs.path). Env KUBEVC_MODEL_STORE.",
    )(func)
    return func


@contextmanager
def _open_store(regions: Sequence[RegionSpec], store: str | None, via_host: str | None) -> Iterator[Any]:
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
        _progress(f"connecting to {via_host} (pyinfra over SSH)")
    with modelstore.open_store(store, via_host, export_root, host_data) as opened:
        yield opened


def _folder(models: Sequence[ModelSpec], name: str) -> str:
    folders = {modelstore.model_folder(m.base_path) for m in models}
    if len(folders) > 1:
        raise SpecError(f"model {name!r} has different basePaths in the chosen regions: pass --region")
    return folders.pop()


def _published(store: Any, folder: str) -> list[int]:
    return modelstore.versions(store, folder)[0]


# --------------------------------------------------------------------------- group


@click.group(context_settings=CONTEXT_SETTINGS)
def model() -> None:
    """Models: register in regions, publish versions to the store, promote and roll back labels.

    \b
    Order: model add -> model publish -> model promote (canary, then stable) -> model rollback
    Example:
      kubevc-gen model add resnet50 --region busan --profile classification
      kubevc-gen model publish resnet50 ./export/resnet50/3 --version 3 --store /mnt/models
      kubevc-gen model promote resnet50 --version 3 --label canary --store /mnt/models
      kubevc-gen model canary resnet50 --percent 10
      kubevc-gen model list --store /mnt/models
    """


# --------------------------------------------------------------------------- add


@model.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--region", "regions", multiple=True, metavar="R", help="Register in region R (repeatable).")
@click.option("--all-regions", is_flag=True, help="Register in every region.")
@click.option("--framework", type=click.Choice(["tensorflow"]), default="tensorflow", show_default=True)
@click.option("--base-path", default=None, help="Path in the serving pods (default: /models/NAME).")
@click.option(
    "--profile",
    "profile_name",
    default="classification",
    show_default=True,
    help="Gateway profile (generator/profiles/*.yaml): " + ", ".join(profile_names()) + ".",
)
@click.option("--signature", default="serving_default", show_default=True, help="SavedModel signature.")
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Class labels, one per line (copied to models/NAME/labels.txt in the fleet repo).",
)
@git_options
@click.pass_context
@handle_errors
def model_add(
    ctx: click.Context,
    name: str,
    regions: tuple[str, ...],
    all_regions: bool,
    framework: str,
    base_path: str | None,
    profile_name: str,
    signature: str,
    labels_file: Path | None,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Register model NAME in regions; `render` then adds it to TF Serving's and the gateway's config.

    \b
    Example:
      kubevc-gen model add yolov5 --region seoul --profile detection --labels coco.txt
      kubevc-gen model add bert --all-regions --profile text --base-path /models/bert
    """
    options = _options(branch, no_commit, dry_run)
    check_name(name, "model name")
    if bool(regions) == all_regions:
        raise SpecError("say where: --region R (repeatable) or --all-regions")
    prof = profile(profile_name)
    base = base_path or f"{modelstore.MOUNT_PATH}/{name}"
    modelstore.model_folder(base)  # must be inside the store mount
    fleet = get_fleet(ctx)
    specs = _regions_for(fleet, name, regions, all_regions=all_regions)
    if not specs:
        raise SpecError("the fleet has no regions yet (kubevc-gen region add ...)")
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
        if _find(spec, name) is not None:
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
        )
        updated.append(_revalidate(spec.model_copy(update={"models": [*spec.models, new]})))
    where = ", ".join(s.name for s in updated)
    message = f"model add {name} ({prof.name}, {base}) to {where}"
    with pending_files(extra):
        change = plan_with_regions(fleet, updated, message)
    change.files.update(extra)
    _report(apply_change(fleet, change, options))


# --------------------------------------------------------------------------- publish


@model.command("publish", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("saved_model_dir", type=click.Path(path_type=Path))
@click.option("--version", "version", type=int, required=True, help="Version number N (folder name).")
@click.option("--region", "regions", multiple=True, metavar="R", help="Use region R's store (repeatable).")
@store_options
@click.option("--dry-run", is_flag=True, help="Check everything, copy nothing.")
@click.pass_context
@handle_errors
def model_publish(
    ctx: click.Context,
    name: str,
    saved_model_dir: Path,
    version: int,
    regions: tuple[str, ...],
    store: str | None,
    via_host: str | None,
    dry_run: bool,
) -> None:
    """Copy a SavedModel into the store as NAME/N, atomically (nothing is committed to git).

    The copy goes to NAME/.incoming-N-<random>/ first and is renamed to NAME/N/ only after its
    sha256 sums match; existing versions are never overwritten. Prints a checksum manifest
    (sha256sum format).

    \b
    Example:
      kubevc-gen model publish resnet50 ./export/resnet50/3 --version 3 --store /mnt/models
      kubevc-gen model publish yolov5 ./yolov5_saved_model --version 2 --via-host 10.8.0.10
    """
    check_name(name, "model name")
    fleet = get_fleet(ctx)
    specs = _regions_for(fleet, name, regions)
    models = [_model_in(s, name) for s in specs]
    folder = _folder(models, name)
    signature = models[0].signature
    modelstore.check_saved_model(saved_model_dir, signature)  # before connecting anywhere
    with _open_store(specs, store, via_host) as opened:
        _progress(f"publishing {saved_model_dir} as {name} version {version} ({opened.where}:{opened.root})")
        result = modelstore.publish(
            opened,
            model=name,
            folder=folder,
            version=version,
            src=saved_model_dir,
            signature=signature,
            progress=_progress,
            dry_run=dry_run,
        )
    m = result.manifest
    click.echo(f"# manifest of {name} version {version}: {len(m.entries)} file(s), {m.total_bytes} bytes")
    click.echo(m.text(), nl=False)
    click.echo(f"# sha256 of the manifest: {m.digest}")
    if dry_run:
        click.echo(f"dry run: would publish {name} version {version} to {result.where}:{result.path}")
        return
    click.echo(f"published {name} version {version} to {result.where}:{result.path}")
    click.echo(f"next: kubevc-gen model promote {name} --version {version} --label canary")


# --------------------------------------------------------------------------- promote / rollback


def _share(percent: int | None) -> str:
    return f"{percent or 0}%"


def _promoted(
    model_spec: ModelSpec, version: int, label: str, region: str, canary_percent: int | None = None
) -> tuple[ModelSpec, str]:
    labels = dict(model_spec.version_labels)
    history = list(model_spec.stable_history or [])
    stable = labels.get("stable")
    old_canary = labels.get("canary")
    old_share = model_spec.canary_percent if model_spec.has_canary else None
    share = model_spec.canary_percent
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
            share = canary_percent  # a new canary starts at the share given (unset: 0%, all on stable)
        elif canary_percent is not None:
            share = canary_percent
        if old_canary == version:
            what = f"canary stays {version}"
        else:
            what = f"canary {old_canary} -> {version}" if old_canary else f"canary -> {version}"
        notes = [f"stable stays {stable}"] if stable else []
        if stable is not None:
            if old_canary is None:
                notes.append(f"share {_share(share)}")
            elif (old_share or 0) != (share or 0):
                notes.append(f"share {_share(old_share)} -> {_share(share)}")
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
            share = None
            what += f" (canary {version} graduated" + (
                f", share {_share(old_share)} -> off)" if old_share else ")"
            )
    loaded = sorted(set(labels.values()))
    return (
        model_spec.model_copy(
            update={
                "version_labels": labels,
                "version_policy": "specific",
                "versions": loaded,
                "stable_history": history or None,
                "canary_percent": share,
            }
        ),
        what,
    )


def _check_published(
    specs: Sequence[RegionSpec], name: str, wanted: int, store: str | None, via_host: str | None
) -> None:
    folder = _folder([_model_in(s, name) for s in specs], name)
    with _open_store(specs, store, via_host) as opened:
        published = _published(opened, folder)
    if wanted not in published:
        have = ", ".join(map(str, published)) or "none"
        raise SpecError(
            f"version {wanted} of {name} is not published in the store {opened.where}:{opened.root} "
            f"(published: {have}); run `kubevc-gen model publish {name} DIR --version {wanted}` first"
        )


@model.command("promote", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option("--version", "version", type=int, required=True, help="The version the label points to.")
@click.option("--label", type=click.Choice(LABELS), required=True, help="stable or canary.")
@click.option(
    "--canary-percent",
    type=click.IntRange(0, 100),
    default=None,
    metavar="P",
    help="With --label canary: the gateway sends P% of the requests naming no version or label to "
    "the canary, the rest to stable (default for a new canary: 0, everyone on stable).",
)
@only_regions_option
@store_options
@click.option(
    "--skip-store-check", is_flag=True, help="Do not check that the version is published (store unreachable)."
)
@git_options
@click.pass_context
@handle_errors
def model_promote(
    ctx: click.Context,
    name: str,
    version: int,
    label: str,
    canary_percent: int | None,
    regions: tuple[str, ...],
    store: str | None,
    via_host: str | None,
    skip_store_check: bool,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Point label stable|canary of NAME at version N (TF Serving version labels, in git).

    A canary keeps the stable version loaded next to it (versionPolicy specific), and the gateway
    sends --canary-percent of the requests that name no version or label to it (a new canary
    starts at 0%: only /labels/canary reaches it; change the share with `model canary`).
    Promoting the canary's version to stable ends the canary and its share. Promoting a version
    to stable records the earlier stable version for `model rollback`. The version must be
    published in the store (checked via --store/--via-host).

    \b
    Example:
      kubevc-gen model promote resnet50 --version 3 --label canary --canary-percent 10 --store /mnt/models
      kubevc-gen model promote resnet50 --version 3 --label stable --region busan --store /mnt/models
    """
    options = _options(branch, no_commit, dry_run)
    check_name(name, "model name")
    if version < 1:
        raise SpecError(f"--version {version}: versions are positive integers")
    if canary_percent is not None and label != "canary":
        raise SpecError("--canary-percent goes with --label canary (promoting to stable ends the canary)")
    fleet = get_fleet(ctx)
    specs = _regions_for(fleet, name, regions)
    updated: list[RegionSpec] = []
    changes: list[str] = []
    for spec in specs:
        new_model, what = _promoted(_model_in(spec, name), version, label, spec.name, canary_percent)
        updated.append(_revalidate(_replace_model(spec, new_model)))
        changes.append(f"{spec.name}: {what}")
    if skip_store_check:
        _progress("not checking the store (--skip-store-check)")
    else:
        _check_published(specs, name, version, store, via_host)
    message = f"model promote {name}: {label} -> {version} ({'; '.join(changes)})"
    _report(apply_change(fleet, plan_with_regions(fleet, updated, message), options))


@model.command("rollback", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@only_regions_option
@store_options
@click.option(
    "--skip-store-check", is_flag=True, help="Do not check that the earlier version is still published."
)
@git_options
@click.pass_context
@handle_errors
def model_rollback(
    ctx: click.Context,
    name: str,
    regions: tuple[str, ...],
    store: str | None,
    via_host: str | None,
    skip_store_check: bool,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Move label stable of NAME back to the version it pointed to before (one commit).

    A running canary stays loaded but its traffic share drops to 0% (raise it again with
    `model canary`); a canary whose version becomes stable again ends.

    \b
    Example:
      kubevc-gen model rollback resnet50
      kubevc-gen model rollback resnet50 --region busan --branch rollback-resnet50
    """
    options = _options(branch, no_commit, dry_run)
    check_name(name, "model name")
    fleet = get_fleet(ctx)
    specs = _regions_for(fleet, name, regions)
    updated: list[RegionSpec] = []
    changes: list[str] = []
    targets: set[int] = set()
    for spec in specs:
        m = _model_in(spec, name)
        stable = m.version_labels.get("stable")
        history = [v for v in (m.stable_history or []) if v != stable]
        if stable is None or not history:
            raise SpecError(
                f"region {spec.name}: {name} has no earlier stable version to roll back to "
                f"(stable: {stable or 'none'}; promote one with `kubevc-gen model promote`)"
            )
        previous = history.pop()
        targets.add(previous)
        labels = dict(m.version_labels)
        labels["stable"] = previous
        what = f"stable {stable} -> {previous}"
        canary = labels.get("canary")
        if canary == previous:  # the canary's version is stable again: nothing left to split
            del labels["canary"]
            what += f" (canary {canary} ended" + (
                f", share {_share(m.canary_percent)} -> off)" if m.canary_percent else ")"
            )
        elif canary is not None and m.canary_percent:  # a rollback stops the canary's traffic
            what += f" (canary {canary} share {_share(m.canary_percent)} -> 0%)"
        new_model = m.model_copy(
            update={
                "version_labels": labels,
                "version_policy": "specific",
                "versions": sorted(set(labels.values())),
                "stable_history": history or None,
                "canary_percent": None,
            }
        )
        updated.append(_revalidate(_replace_model(spec, new_model)))
        changes.append(f"{spec.name}: {what}")
    if skip_store_check:
        _progress("not checking the store (--skip-store-check)")
    elif store is not None or via_host is not None:
        for v in sorted(targets):
            _check_published(specs, name, v, store, via_host)
    message = f"model rollback {name}: {'; '.join(changes)}"
    _report(apply_change(fleet, plan_with_regions(fleet, updated, message), options))


@model.command("canary", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.option(
    "--percent",
    type=click.IntRange(0, 100),
    required=True,
    metavar="P",
    help="Share 0..100 of the requests naming no version or label that go to the canary.",
)
@only_regions_option
@git_options
@click.pass_context
@handle_errors
def model_canary(
    ctx: click.Context,
    name: str,
    percent: int,
    regions: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Set the traffic share of NAME's running canary (one commit; versions stay as they are).

    The gateway sends P% of the requests that name no version or label to version label canary
    and the rest to stable, sticky per X-Request-Id; 0 keeps everyone on stable. The model needs
    a stable and a canary version (`model promote ... --label canary`).

    \b
    Example:
      kubevc-gen model canary resnet50 --percent 10 --region busan
      kubevc-gen model canary resnet50 --percent 50
    """
    options = _options(branch, no_commit, dry_run)
    check_name(name, "model name")
    fleet = get_fleet(ctx)
    specs = _regions_for(fleet, name, regions)
    updated: list[RegionSpec] = []
    changes: list[str] = []
    for spec in specs:
        m = _model_in(spec, name)
        if not m.has_canary:
            missing = "stable" if "canary" in m.version_labels else "canary"
            raise SpecError(
                f"region {spec.name}: {name} has no {missing} version, so there is no canary to share "
                f"traffic with (labels: {_labels_text(m)}); "
                f"run `kubevc-gen model promote {name} --version N --label {missing}` first"
            )
        old = m.canary_percent or 0
        changes.append(
            f"{spec.name}: {old}% -> {percent}%" if old != percent else f"{spec.name}: {percent}% (unchanged)"
        )
        if old != percent:
            updated.append(
                _revalidate(_replace_model(spec, m.model_copy(update={"canary_percent": percent})))
            )
    message = f"model canary {name}: {'; '.join(changes)}"
    _report(apply_change(fleet, plan_with_regions(fleet, updated, message), options))


def _labels_text(m: ModelSpec) -> str:
    text = ", ".join(f"{k}={v}" for k, v in sorted(m.version_labels.items())) or "none"
    if m.has_canary:
        text += f" (canary share {_share(m.canary_percent)})"
    return text


# --------------------------------------------------------------------------- list


@model.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--region", "regions", multiple=True, metavar="R", help="Only region R (repeatable).")
@store_options
@click.pass_context
@handle_errors
def model_list(ctx: click.Context, regions: tuple[str, ...], store: str | None, via_host: str | None) -> None:
    """What is registered where, which versions the store has, which labels point where.

    \b
    Example:
      kubevc-gen model list
      kubevc-gen model list --region busan --store /mnt/models
    """
    fleet = get_fleet(ctx)
    specs = _regions_for(fleet, "", regions, all_regions=True)
    rows = [(s, m) for s in specs for m in s.models]
    in_store: dict[str, str] = {}
    if rows and (store is not None or via_host is not None):
        with _open_store(specs, store, via_host) as opened:
            for folder in sorted({modelstore.model_folder(m.base_path) for _, m in rows}):
                found, stale = modelstore.versions(opened, folder)
                text = ", ".join(map(str, found)) or "none"
                if stale:
                    text += f" (+{len(stale)} interrupted .incoming)"
                in_store[folder] = text
    table = Table(title=f"models in {fleet.root.name}")
    for col in ("region", "model", "profile", "basePath", "policy", "loaded", "labels", "store"):
        table.add_column(col)
    for spec, m in rows:
        loaded = ", ".join(map(str, m.versions)) if m.version_policy == "specific" else m.version_policy
        labels = _labels_text(m) if m.version_labels else "-"
        folder = modelstore.model_folder(m.base_path)
        table.add_row(
            spec.name,
            m.name,
            m.profile,
            m.base_path,
            m.version_policy,
            loaded,
            labels,
            in_store.get(folder, "-" if not in_store else "none"),
        )
    Console(width=140).print(table)
    if not rows:
        click.echo("no models yet: kubevc-gen model add NAME --region R ...")
    elif not in_store:
        click.echo("store versions not shown: pass --store PATH or --via-host HOST", err=True)
    sys.stdout.flush()
