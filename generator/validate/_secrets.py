"""The ``secrets`` check: no plain-text Secret anywhere in the fleet repo (SOPS-encrypted ones are fine)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import yaml

from ..repo import Git
from ._docs import obj_name
from ._report import SHARED, Report


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
