"""Part of the ``secrets`` check: git URLs with embedded credentials in files already in the repo.

``init``, ``region add`` and ``region set`` refuse such URLs; a repo made before that (or edited
by hand) may still hold one in ``kubevc-fleet.yaml``, a region file or a rendered GitRepository.
Each is a finding whose message shows the URL with the credentials replaced by ``***``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..repo import Git
from ..spec import URL_WITH_USERINFO, redact_url, url_has_credentials
from ._report import SHARED, Report


def check_credential_urls(root: Path, regions: list[str], report: Report) -> None:
    """Every tracked or new YAML file of the repo at ``root``; findings go to ``report``."""
    proc = Git(root).query("ls-files", "-co", "--exclude-standard", "-z")
    files = (
        [f for f in proc.stdout.split("\0") if f.endswith((".yaml", ".yml"))] if proc.returncode == 0 else []
    )
    for rel in files:
        path = root / rel
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "@" not in text:
            continue
        parts = PurePosixPath(rel).parts
        region = (
            parts[1]
            if len(parts) > 2 and parts[0] in ("regions", "clusters", "apps") and parts[1] in regions
            else SHARED
        )
        for match in URL_WITH_USERINFO.finditer(text):
            url = match.group(0)
            if url_has_credentials(url):
                line = text.count("\n", 0, match.start()) + 1
                report.add(
                    region,
                    "secrets",
                    f"{rel}:{line}",
                    "git URL",
                    f"embedded credentials in {redact_url(url)}; remove them and use a Flux secretRef",
                )
