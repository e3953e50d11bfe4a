"""``kubevc-gen model ...``: register, publish, promote and roll back models.

Order of use::

    kubevc-gen model add resnet50 --region busan --profile classification   # git: region spec
    kubevc-gen model publish resnet50 ./export/3 --version 3 --store /mnt/models  # store only
    kubevc-gen model promote resnet50 --version 3 --label canary --store /mnt/models  # git
    kubevc-gen model canary resnet50 --percent 10                             # git
    kubevc-gen model promote resnet50 --version 3 --label stable --store /mnt/models  # git
    kubevc-gen model rollback resnet50                                        # git

``add``, ``promote``, ``canary`` and ``rollback`` change region specs and go through the one
mutating path (:func:`kubevc.generator.repo.apply_change`: validate, write atomically, one
commit, or ``--branch``/``--no-commit``/``--dry-run``). ``publish`` changes only the model store
(:mod:`kubevc.generator.models`) and commits nothing. ``list`` changes nothing.

Version labels and policy: while a canary runs the model's ``versionPolicy`` is ``specific`` with
the stable and the canary version loaded; promoting to stable keeps the earlier stable version in
``stableHistory`` (region.yaml), which ``rollback`` pops. While a model has both a ``stable``
and a ``canary`` label, ``render`` gives its gateway model ``canary: {label: canary, percent: P}``
with P = ``canaryPercent`` (region.yaml; unset = 0, everyone on stable).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .. import models, workflows
from ..errors import SpecError
from ..models import LABELS, labels_text, model_folder_of, model_in, open_region_store, regions_for
from ..repo import Fleet, profile_names
from ..spec import DEFAULT_RUNTIME, RUNTIMES, Selector, check_name, parse_tensor
from ._common import (
    CONTEXT_SETTINGS,
    change_options,
    file_option,
    get_fleet,
    git_options,
    handle_errors,
    only_regions_option,
    progress,
    region_filter,
    report_change,
    selected_regions,
    selector_option,
    skip_store_check_option,
    store_options,
)
from ._output import document, emit, output_option
from ._progress import steps


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
@region_filter("Register in region R (repeatable).")
@click.option("--all-regions", is_flag=True, help="Register in every region.")
@selector_option
@click.option("--framework", type=click.Choice(["tensorflow"]), default="tensorflow", show_default=True)
@click.option("--base-path", default=None, help="Path in the serving pods (default: /models/NAME).")
@click.option(
    "--profile",
    "profile_name",
    default=None,
    help="Gateway profile (generator/profiles/*.yaml): "
    + ", ".join(profile_names())
    + " (default: picked from --saved-model, else classification).",
)
@click.option("--signature", default="serving_default", show_default=True, help="SavedModel signature.")
@click.option(
    "--saved-model",
    "saved_model",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="SavedModel folder: read the signature's inputs/outputs and pick --profile and --wire from them.",
)
@click.option(
    "--wire",
    type=click.Choice(models.WIRES),
    default=None,
    help="Image input sent to the server as encoded bytes or a uint8/float16/float32 tensor "
    "(default: picked from --saved-model, else the profile's dtype).",
)
@file_option(
    "--labels",
    "labels_file",
    help_text="Class labels, one per line (copied to models/NAME/labels.txt in the fleet repo).",
    exists=True,
)
@click.option(
    "--accelerator",
    type=click.Choice(["nvidia", "coral", "hailo", "cpu"]),
    default=None,
    help="Run on a node with this accelerator (from `node prepare`'s inventory; default: any node).",
)
@click.option(
    "--min-memory", default=None, metavar="QUANTITY", help="Least node memory the model needs (e.g. 4Gi)."
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default=DEFAULT_RUNTIME,
    show_default=True,
    help="Model server: tfserving (SavedModel), triton (config.pbtxt repository) or mlserver.",
)
@click.option(
    "--serving-group",
    default=None,
    help="Serve in the Deployment of this group, shared with its models (default: the model's own).",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    help="Input tensor NAME:DATATYPE:DIMS (e.g. X:FP32:-1,3) for Triton/MLServer configs (repeatable).",
)
@click.option("--output", "outputs", multiple=True, help="Output tensor NAME:DATATYPE:DIMS (repeatable).")
@git_options
@click.pass_context
@handle_errors
def model_add(
    ctx: click.Context,
    name: str,
    regions: tuple[str, ...],
    all_regions: bool,
    selector: Selector | None,
    framework: str,
    base_path: str | None,
    profile_name: str | None,
    signature: str,
    saved_model: Path | None,
    wire: str | None,
    labels_file: Path | None,
    accelerator: str | None,
    min_memory: str | None,
    runtime: str,
    serving_group: str | None,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Register model NAME in regions; `render` then adds it to TF Serving's and the gateway's config.

    With --saved-model, the signature in saved_model.pb picks the gateway profile (detection,
    classification, text, tensor) and the wire form of an image input (encoded bytes for a
    DT_STRING input, else the input's uint8/float16/float32); --profile and --wire override.

    \b
    Example:
      kubevc-gen model add yolov5 --region seoul --profile detection --labels coco.txt
      kubevc-gen model add bert --all-regions --profile text --base-path /models/bert
      kubevc-gen model add yolo --region seoul --saved-model ./yolo/1 --labels coco.txt
      kubevc-gen model add ssd --region seoul --profile detection --accelerator coral --min-memory 2Gi
    """
    options = change_options(branch, no_commit, dry_run)
    profile_name, wire = _pick_serving(saved_model, signature, profile_name, wire)
    check_name(name, "model name")
    workflows.check_min_memory(min_memory)
    if serving_group is not None:
        check_name(serving_group, "serving group")
    input_specs = [parse_tensor(t) for t in inputs]
    output_specs = [parse_tensor(t) for t in outputs]
    if selector is not None and all_regions:
        raise SpecError("--selector and --all-regions do not go together")
    fleet = get_fleet(ctx) if selector is not None else None
    if fleet is not None:
        regions = selected_regions(fleet, regions, selector)
    workflows.check_new_model(name, regions, all_regions, profile_name, base_path)
    fleet = fleet or get_fleet(ctx)
    result = workflows.add_model(
        fleet,
        name,
        regions=regions,
        all_regions=all_regions,
        framework=framework,
        base_path=base_path,
        profile_name=profile_name,
        signature=signature,
        labels_file=labels_file,
        options=options,
        wire=wire,
        accelerator=accelerator,
        min_memory=min_memory,
        runtime=runtime,
        serving_group=serving_group,
        inputs=input_specs,
        outputs=output_specs,
    )
    report_change(result)


def _pick_serving(
    saved_model: Path | None, signature: str, profile_name: str | None, wire_option: str | None
) -> tuple[str, models.Wire | None]:
    """(profile, wire) for ``model add``: the options given, the rest picked from the signature."""
    wire = next((w for w in models.WIRES if w == wire_option), None)  # click checked the choice
    if saved_model is None:
        return profile_name or "classification", wire
    sig = models.read_signature(saved_model, signature)
    pick = models.pick_serving(sig)
    click.echo(f"{saved_model} signature {signature!r}: profile {pick.profile}, wire {pick.wire or '-'}")
    for reason in pick.reasons:
        click.echo(f"  because {reason}")
    if profile_name is not None and profile_name != pick.profile:
        click.echo(f"  --profile {profile_name} overrides the pick")
    if wire is not None and wire != pick.wire:
        click.echo(f"  --wire {wire} overrides the pick")
    chosen = profile_name or pick.profile
    if wire is None and chosen == pick.profile:
        wire = pick.wire
    return chosen, wire


# --------------------------------------------------------------------------- publish


@model.command("publish", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@click.argument("saved_model_dir", type=click.Path(path_type=Path))
@click.option("--version", "version", type=int, required=True, help="Version number N (folder name).")
@region_filter("Use region R's store (repeatable).")
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
    """Copy a model version into the store as NAME/N, atomically (nothing is committed to git).

    The source folder must match the model's runtime: a SavedModel (tfserving); model.py,
    model.onnx, model.pt or a SavedModel (triton, which also gets NAME/config.pbtxt from the model
    spec); model-settings.json naming the implementation (mlserver, which gets
    NAME/model-settings.json serving the newest version).

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
    specs = regions_for(fleet, name, regions)
    found = [model_in(s, name) for s in specs]
    folder = model_folder_of(found, name)
    runtimes = {m.serving_runtime for m in found}
    if len(runtimes) > 1:
        raise SpecError(
            f"model {name!r} runs {' and '.join(sorted(runtimes))} in different regions; publish per region"
        )
    models.check_source(found[0], saved_model_dir)  # before connecting anywhere
    with steps(f"publish {name} {version}") as say, open_region_store(specs, store, via_host, say) as opened:
        say(f"publishing {saved_model_dir} as {name} version {version} ({opened.where}:{opened.root})")
        result = models.publish_model(
            opened,
            model=found[0],
            folder=folder,
            version=version,
            src=saved_model_dir,
            progress=say,
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


def _model_regions(
    ctx: click.Context, name: str, regions: tuple[str, ...], selector: Selector | None
) -> tuple[Fleet, tuple[str, ...]]:
    """The fleet and the regions a command on model ``name`` acts on (named, or by ``selector``)."""
    check_name(name, "model name")
    fleet = get_fleet(ctx)
    return fleet, selected_regions(fleet, regions, selector)


# --------------------------------------------------------------------------- promote / rollback


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
@selector_option
@store_options
@skip_store_check_option("Do not check that the version is published (store unreachable).")
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
    selector: Selector | None,
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
    published in the store (checked via --store/--via-host). For Triton and MLServer models the
    store's config.pbtxt version_policy / model-settings.json are rewritten to match (atomically,
    before the commit; --dry-run prints the diff).

    \b
    Example:
      kubevc-gen model promote resnet50 --version 3 --label canary --canary-percent 10 --store /mnt/models
      kubevc-gen model promote resnet50 --version 3 --label stable --region busan --store /mnt/models
    """
    options = change_options(branch, no_commit, dry_run)
    check_name(name, "model name")
    if version < 1:
        raise SpecError(f"--version {version}: versions are positive integers")
    if canary_percent is not None and label != "canary":
        raise SpecError("--canary-percent goes with --label canary (promoting to stable ends the canary)")
    fleet = get_fleet(ctx)
    regions = selected_regions(fleet, regions, selector)
    result = workflows.promote_model(
        fleet,
        name,
        version=version,
        label=label,
        canary_percent=canary_percent,
        regions=regions,
        store=store,
        via_host=via_host,
        skip_store_check=skip_store_check,
        options=options,
        progress=progress,
    )
    report_change(result)


@model.command("rollback", context_settings=CONTEXT_SETTINGS)
@click.argument("name")
@only_regions_option
@selector_option
@store_options
@skip_store_check_option("Do not check that the earlier version is still published.")
@git_options
@click.pass_context
@handle_errors
def model_rollback(
    ctx: click.Context,
    name: str,
    regions: tuple[str, ...],
    selector: Selector | None,
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
    Triton and MLServer models get their store config rewritten as with `model promote`.

    \b
    Example:
      kubevc-gen model rollback resnet50
      kubevc-gen model rollback resnet50 --region busan --branch rollback-resnet50
    """
    options = change_options(branch, no_commit, dry_run)
    fleet, regions = _model_regions(ctx, name, regions, selector)
    result = workflows.rollback_model(
        fleet,
        name,
        regions=regions,
        store=store,
        via_host=via_host,
        skip_store_check=skip_store_check,
        options=options,
        progress=progress,
    )
    report_change(result)


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
@selector_option
@git_options
@click.pass_context
@handle_errors
def model_canary(
    ctx: click.Context,
    name: str,
    percent: int,
    regions: tuple[str, ...],
    selector: Selector | None,
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
    options = change_options(branch, no_commit, dry_run)
    fleet, regions = _model_regions(ctx, name, regions, selector)
    report_change(workflows.set_canary_share(fleet, name, percent=percent, regions=regions, options=options))


# --------------------------------------------------------------------------- list


@model.command("list", context_settings=CONTEXT_SETTINGS)
@region_filter("Only region R (repeatable).")
@selector_option
@store_options
@output_option
@click.pass_context
@handle_errors
def model_list(
    ctx: click.Context,
    regions: tuple[str, ...],
    selector: Selector | None,
    store: str | None,
    via_host: str | None,
    output: str,
) -> None:
    """What is registered where, which versions the store has, which labels point where.

    -o json: {"schemaVersion": 1, "kind": "ModelList", "items": [{"region", "name", "profile",
    "basePath", "versionPolicy", "versions", "versionLabels", "store"}]}; "store" is the store's
    versions as text, null when not asked (--store/--via-host). -o name: model/REGION/NAME.

    \b
    Example:
      kubevc-gen model list
      kubevc-gen model list --region busan --store /mnt/models
      kubevc-gen model list -l tier=canary
    """
    fleet = get_fleet(ctx)
    specs = regions_for(fleet, "", selected_regions(fleet, regions, selector), all_regions=True)
    rows = [(s, m) for s in specs for m in s.models]
    in_store: dict[str, str] = {}
    if rows and (store is not None or via_host is not None):
        with open_region_store(specs, store, via_host, progress) as opened:
            for folder in sorted({models.model_folder(m.base_path) for _, m in rows}):
                found, stale = models.versions(opened, folder)
                text = ", ".join(map(str, found)) or "none"
                if stale:
                    text += f" (+{len(stale)} interrupted .incoming)"
                in_store[folder] = text
    if output != "table":
        items = [
            {
                "region": spec.name,
                "name": m.name,
                "profile": m.profile,
                "basePath": m.base_path,
                "versionPolicy": m.version_policy,
                "versions": list(m.versions),
                "versionLabels": dict(m.version_labels),
                "store": in_store.get(models.model_folder(m.base_path), "none") if in_store else None,
            }
            for spec, m in rows
        ]
        names = [f"model/{spec.name}/{m.name}" for spec, m in rows]
        emit(output, document("ModelList", items=items), names, lambda: None)
        return
    table = Table(title=f"models in {fleet.root.name}")
    for col in ("region", "model", "profile", "basePath", "policy", "loaded", "labels", "store"):
        table.add_column(col)
    for spec, m in rows:
        loaded = ", ".join(map(str, m.versions)) if m.version_policy == "specific" else m.version_policy
        labels = labels_text(m) if m.version_labels else "-"
        folder = models.model_folder(m.base_path)
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
