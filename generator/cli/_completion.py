"""Shell completion of region and model names (``_KUBEVC_GEN_COMPLETE=bash_source kubevc-gen``).

The names come straight from the fleet repo of ``--fleet`` (or the current folder): the region
folders under ``regions/`` and the model names their ``region.yaml`` files list. Nothing is
rendered, validated or committed, and a folder that is not a fleet repo completes nothing: a
completion must answer in a keystroke and never fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from click.shell_completion import CompletionItem

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]

# region-or-model arguments named NAME: (command path without the root, parameter name)
REGION_NAME_ARGUMENTS = {("region", "show", "name"), ("region", "set", "name"), ("region", "remove", "name")}
REGION_LIST_ARGUMENTS = {("region", "label", "names")}
MODEL_NAME_ARGUMENTS = {
    ("model", command, "name") for command in ("publish", "promote", "rollback", "canary", "remove")
}


def _fleet_root(ctx: click.Context) -> Path:
    value = ctx.find_root().params.get("fleet_path")
    return Path(value) if value else Path(".")


def fleet_region_names(root: Path) -> list[str]:
    """The regions of the fleet repo at ``root`` (folders holding a region.yaml), sorted."""
    base = root / "regions"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "region.yaml").is_file())


def fleet_model_names(root: Path) -> list[str]:
    """Every model name the region files of ``root`` list (files that do not parse are skipped)."""
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    names: set[str] = set()
    for region in fleet_region_names(root):
        try:
            text = (root / "regions" / region / "region.yaml").read_text(encoding="utf-8")
            if "&" in text or "*" in text:  # anchors or aliases: not expanded for a completion
                continue
            doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader (C or pure)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        models = doc.get("models") if isinstance(doc, dict) else None
        for model in models if isinstance(models, list) else []:
            if isinstance(model, dict) and isinstance(model.get("name"), str):
                names.add(model["name"])
    return sorted(names)


def complete_region(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(n) for n in fleet_region_names(_fleet_root(ctx)) if n.startswith(incomplete)]


def complete_model(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(n) for n in fleet_model_names(_fleet_root(ctx)) if n.startswith(incomplete)]


def completer_for(path: tuple[str, ...], param: click.Parameter) -> Completer | None:
    """Which names ``param`` of the command at ``path`` takes: regions, models or neither."""
    name = param.name or ""
    if name in ("region", "regions") or (*path, name) in REGION_NAME_ARGUMENTS | REGION_LIST_ARGUMENTS:
        return complete_region
    if (*path, name) in MODEL_NAME_ARGUMENTS:
        return complete_model
    return None


def install_completion(group: click.Group, path: tuple[str, ...] = ()) -> None:
    """Give every REGION argument, ``--region`` option and model NAME argument under ``group`` its
    completion (commands registered later by other modules get it by the same rule)."""
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            install_completion(command, (*path, name))
            continue
        for param in command.params:
            completer = completer_for((*path, name), param)
            if completer is not None and param._custom_shell_complete is None:
                param._custom_shell_complete = completer
