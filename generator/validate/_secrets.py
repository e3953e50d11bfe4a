"""The ``secrets`` check: no plain-text Secret anywhere in the fleet repo (SOPS-encrypted ones are fine)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..repo import Git
from ..spec import secret_file
from ._docs import obj_name
from ._report import SHARED, Report


def check_region_secrets(root: Path, region: str, names: Sequence[str], report: Report) -> None:
    """A finding for every secret the region spec lists whose SOPS file is not in the tree."""
    for name in names:
        rel = secret_file(region, name)
        report.count(region, "secrets")
        if not (root / rel).is_file():
            report.add(
                region,
                "secrets",
                rel,
                f"Secret/{name}",
                f"listed in regions/{region}/region.yaml but missing; create it with "
                f"`kubevc-gen secret set {region} {name} --from-literal KEY=VALUE`",
            )


def check_secrets(root: Path, regions: list[str], report: Report) -> None:
    """Every tracked or new YAML/JSON file of the repo at ``root``; findings go to ``report``."""
    proc = Git(root).query("ls-files", "-co", "--exclude-standard", "-z")
    files = [f for f in proc.stdout.split("\0") if f] if proc.returncode == 0 else []
    if proc.returncode != 0:
        files = [
            p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts
        ]
    for rel in files:
        if not rel.endswith((".yaml", ".yml", ".json")):
            continue
        parts = PurePosixPath(rel).parts
        region = (
            parts[1]
            if len(parts) > 2 and parts[0] in ("regions", "clusters", "apps") and parts[1] in regions
            else SHARED
        )
        path = root / rel
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "Secret" not in text:
            continue
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            if re.search(r"^kind:\s*Secret\s*$", text, re.M) and "sops:" not in text:
                report.add(region, "secrets", rel, "Secret", "unparseable file with a plain Secret")
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                report.count(region, "secrets")
                if "sops" not in doc:
                    report.add(
                        region,
                        "secrets",
                        rel,
                        obj_name(doc),
                        "plain-text Secret in git; encrypt it with sops (see .sops.yaml)",
                    )
                    continue
                problem = sops_problem(doc)
                if problem:
                    report.add(region, "secrets", rel, obj_name(doc), problem)


def sops_problem(doc: dict[str, Any]) -> str | None:
    """Why a Secret carrying ``sops`` metadata is not really SOPS-encrypted (None: it is).

    Every ``data``/``stringData`` value must be an ``ENC[...]`` and the ``sops`` metadata a
    mapping; the message names the key, never a value.
    """
    if not isinstance(doc.get("sops"), dict) or not doc["sops"]:
        return "sops metadata is empty; encrypt the file with `kubevc-gen secret set` (or sops)"
    for section in ("data", "stringData"):
        values = doc.get(section) or {}
        if not isinstance(values, dict):
            return f"{section} is not a mapping"
        for key, value in values.items():
            if not (isinstance(value, str) and value.startswith("ENC[") and value.endswith("]")):
                return f"{section}.{key} is not SOPS-encrypted (not ENC[...]); re-encrypt the file"
    return None
