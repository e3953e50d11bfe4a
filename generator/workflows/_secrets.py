"""Workflows of SOPS-encrypted Secrets: ``secret set``, ``secret list``, ``secret remove``.

``secret set`` builds the Secret in memory, has sops encrypt it (for ``.sops.yaml``'s age
recipients), and commits in one change: ``apps/<region>/secrets/<name>.sops.yaml``, the name added
to the region spec's ``secrets`` and the re-rendered ``apps/<region>/kustomization.yaml`` listing it.
The plaintext never reaches the disk, git, a message or a log.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..render import plan_with_regions
from ..repo import ChangeOptions, ChangeResult, Fleet, apply_change, dump_generated, encrypt_secret
from ..spec import check_name, check_secret_key, secret_file, secret_manifest


@dataclass(frozen=True)
class SecretEntry:
    """One region secret as ``secret list`` shows it."""

    region: str
    name: str
    file: str
    present: bool


def read_entries(from_files: Mapping[str, Path], literals: Mapping[str, str]) -> dict[str, bytes]:
    """The secret's data from ``--from-file KEY=PATH`` and ``--from-literal KEY=VALUE`` (keys unique)."""
    entries: dict[str, bytes] = {}
    for key, path in from_files.items():
        check_secret_key(key)
        try:
            entries[key] = path.read_bytes()
        except OSError as exc:
            raise SpecError(f"--from-file {key}={path}: cannot read: {exc.strerror or exc}") from None
    for key, value in literals.items():
        check_secret_key(key)
        if key in entries:
            raise SpecError(f"secret key {key!r} is given twice")
        entries[key] = value.encode()
    return entries


def _plaintexts(entries: Mapping[str, bytes]) -> list[str]:
    texts: list[str] = []
    for value in entries.values():
        texts.append(value.decode(errors="replace"))
        texts.append(base64.b64encode(value).decode())
    return texts


def encrypted_secret(
    fleet: Fleet,
    rel: str,
    name: str,
    namespace: str,
    entries: Mapping[str, bytes],
    secret_type: str = "Opaque",  # noqa: S107  (a Secret *type*)
) -> bytes:
    """Secret ``name`` with ``entries``, encrypted by sops for the creation rule of ``rel``."""
    manifest = secret_manifest(name, namespace, entries, secret_type)
    return encrypt_secret(fleet.root, rel, dump_generated(manifest), _plaintexts(entries))


def set_secret(
    fleet: Fleet,
    region: str,
    name: str,
    entries: Mapping[str, bytes],
    *,
    namespace: str | None = None,
    secret_type: str = "Opaque",  # noqa: S107  (a Secret *type*)
    options: ChangeOptions | None = None,
) -> ChangeResult:
    """``secret set``: encrypt Secret ``name`` for ``region`` and commit it with the region's listing."""
    check_name(region)
    check_name(name, "secret name")
    spec = fleet.load(region)
    rel = secret_file(region, name)
    encrypted = encrypted_secret(fleet, rel, name, namespace or fleet.config.namespace, entries, secret_type)
    if name not in spec.secrets:
        spec = spec.model_copy(update={"secrets": [*spec.secrets, name]})
    verb = "update" if (fleet.root / rel).is_file() else "add"
    keys = ", ".join(sorted(entries))
    change = plan_with_regions(
        fleet, [spec], f"secret set {region} {name}: {verb} (keys {keys})", pending={rel: encrypted}
    )
    change.files[rel] = encrypted
    return apply_change(fleet, change, options or ChangeOptions())


def list_secrets(fleet: Fleet, region: str | None = None) -> list[SecretEntry]:
    """The secrets the region specs list, and whether each file is there."""
    names = [region] if region else fleet.region_names()
    found: list[SecretEntry] = []
    for name in names:
        spec = fleet.load(name)
        for secret in spec.secrets:
            rel = secret_file(name, secret)
            found.append(SecretEntry(name, secret, rel, (fleet.root / rel).is_file()))
    return found


def remove_secret(fleet: Fleet, region: str, name: str, options: ChangeOptions | None = None) -> ChangeResult:
    """``secret remove``: drop ``name`` from the region spec and delete its file, one commit."""
    check_name(region)
    check_name(name, "secret name")
    spec = fleet.load(region)
    rel = secret_file(region, name)
    if name not in spec.secrets and not (fleet.root / rel).is_file():
        raise SpecError(f"region {region!r} has no secret {name!r} ({rel})")
    spec = spec.model_copy(update={"secrets": [s for s in spec.secrets if s != name]})
    change = plan_with_regions(fleet, [spec], f"secret remove {region} {name}")
    change.files[rel] = None
    return apply_change(fleet, change, options or ChangeOptions())
