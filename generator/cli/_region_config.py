"""``kubevc-gen image ...`` (the fleet's image catalogue) and ``kubevc-gen region label``."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from .. import workflows
from ..spec import PLATFORMS, WORKLOADS, Selector, pick_image
from ._common import (
    CONTEXT_SETTINGS,
    change_options,
    get_fleet,
    git_options,
    handle_errors,
    report_change,
    selected_regions,
    selector_option,
)


@click.group(context_settings=CONTEXT_SETTINGS)
def image() -> None:
    """The image catalogue: which image each workload runs on which CPU platform.

    kubevc-fleet.yaml lists images per workload (serving, gateway, modelStorePublisher) with the
    platforms each is built for; they come before the built-in ones (tensorflow/serving: amd64
    only; the kubevc gateway: amd64 and arm64; busybox for the publisher job: all three). A region
    runs the first image covering all its architectures (arm64 = linux/arm64, armhf =
    linux/arm/v7), or its own images.WORKLOAD (`region set`); `validate` fails a region none covers.

    \b
    Example:
      kubevc-gen image add serving ghcr.io/acme/tf-serving-arm64:2.18.0 --platform linux/arm64
      kubevc-gen image list
    """


@image.command("add", context_settings=CONTEXT_SETTINGS)
@click.argument("workload", type=click.Choice(WORKLOADS))
@click.argument("reference", metavar="REPOSITORY:TAG[@sha256:DIGEST]")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    required=True,
    type=click.Choice(PLATFORMS),
    help="A platform the image is built for (repeatable).",
)
@click.option("--first", is_flag=True, help="Try this image before the catalogue's others.")
@git_options
@click.pass_context
@handle_errors
def image_add(
    ctx: click.Context,
    workload: str,
    reference: str,
    platforms: tuple[str, ...],
    first: bool,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Add an image for WORKLOAD to the catalogue in kubevc-fleet.yaml and re-render (one commit).

    \b
    Example:
      kubevc-gen image add serving emacski/tensorflow-serving:2.6.0 --platform linux/arm64 \\
          --platform linux/arm/v7
    """
    options = change_options(branch, no_commit, dry_run)
    fleet = get_fleet(ctx)
    report_change(workflows.add_image(fleet, workload, reference, list(platforms), options, first=first))


@image.command("list", context_settings=CONTEXT_SETTINGS)
@selector_option
@click.pass_context
@handle_errors
def image_list(ctx: click.Context, selector: Selector | None) -> None:
    """The catalogue, then the image each region runs per workload ("none" fails validate).

    \b
    Example:
      kubevc-gen image list -l site=factory
    """
    fleet = get_fleet(ctx)
    config = fleet.config
    catalogue = Table(title="image catalogue (first match wins)")
    for col in ("workload", "image", "platforms", "from"):
        catalogue.add_column(col)
    for workload in WORKLOADS:
        configured = config.images.configured(workload)
        for entry in config.images.candidates(workload):
            origin = "kubevc-fleet.yaml" if entry in configured else "built-in"
            catalogue.add_row(workload, entry.reference, ", ".join(entry.platforms), origin)
    console = Console(width=160)
    console.print(catalogue)
    names = set(selected_regions(fleet, (), selector)) if selector is not None else None
    regions = Table(title="images per region")
    for col in ("region", "arch", *WORKLOADS):
        regions.add_column(col)
    for spec in fleet.load_all():
        if names is not None and spec.name not in names:
            continue
        cells = []
        for workload in WORKLOADS:
            chosen = pick_image(workload, spec.architectures, config.images, spec.images)
            cells.append(chosen.reference if chosen else "none")
        regions.add_row(spec.name, ",".join(spec.architectures), *cells)
    console.print(regions)


@click.command("label", context_settings=CONTEXT_SETTINGS)
@click.argument("names", nargs=-1, metavar="[REGION]... KEY=VALUE|KEY-...")
@selector_option
@git_options
@click.pass_context
@handle_errors
def region_label(
    ctx: click.Context,
    names: tuple[str, ...],
    selector: Selector | None,
    branch: str | None,
    no_commit: bool,
    dry_run: bool,
) -> None:
    """Set (KEY=VALUE) or remove (KEY-) labels of regions, the labels --selector/-l matches.

    \b
    Example:
      kubevc-gen region label seoul tier=canary site=factory
      kubevc-gen region label busan tier-
      kubevc-gen region label -l site=factory maintenance=weekend
    """
    options = change_options(branch, no_commit, dry_run)
    regions = [n for n in names if "=" not in n and not n.endswith("-")]
    changes = [n for n in names if n not in regions]
    if not changes:
        raise click.UsageError("give at least one KEY=VALUE or KEY- after the regions")
    fleet = get_fleet(ctx)
    chosen = selected_regions(fleet, regions, selector)
    if not chosen:
        raise click.UsageError("name a REGION or give --selector")
    report_change(workflows.label_regions(fleet, chosen, changes, options))
