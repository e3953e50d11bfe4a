"""Model profiles from disk: the shipped ones (``generator/profiles/*.yaml``) or another folder.

>>> from kubevc.generator.repo import load_profiles
>>> sorted(load_profiles())
['classification', 'classification-299', 'detection', 'tensor', 'text']
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from ..errors import SpecError
from ..spec import PROFILES_DIR, Profile, check_name, pick_profile
from . import _yamlio as yamlio
from ._problems import format_validation_error


def _load_file(path: Path) -> Profile:
    rel = f"profiles/{path.name}"
    raw = yamlio.load_roundtrip(path.read_text(encoding="utf-8"), rel)
    try:
        prof = Profile.model_validate(yamlio.to_plain(raw))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, rel, raw)) from None
    check_name(prof.name, "profile name")
    if prof.name != path.stem:
        raise SpecError(f"{rel}: name: {prof.name!r} does not match the file name {path.stem!r}")
    return prof


def load_profiles(folder: Path | None = None) -> dict[str, Profile]:
    """Every profile in ``folder`` (default: the shipped ones), by name; errors name file and key."""
    if folder is None:
        return dict(_shipped())
    profiles: dict[str, Profile] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            prof = _load_file(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        profiles[prof.name] = prof
    if problems:
        raise SpecError(problems)
    return profiles


@functools.cache
def _shipped() -> tuple[tuple[str, Profile], ...]:
    return tuple(load_profiles(PROFILES_DIR).items()) if PROFILES_DIR.is_dir() else ()


def profile_names() -> list[str]:
    return sorted(load_profiles())


def profile(name: str) -> Profile:
    """The shipped profile ``name``; a :class:`SpecError` listing the known ones otherwise."""
    return pick_profile(load_profiles(), name)


def read_label_files(
    root: Path, rels: Iterable[str], pending: Mapping[str, bytes] | None = None
) -> dict[str, bytes]:
    """The bytes of every model label file in ``rels`` that exists, by path in the fleet repo.

    ``pending`` holds files a command is about to write in the same commit (``model add --labels``):
    they are read from there before the disk, so the whole change is planned before anything is
    written. A missing file is left out; rendering reports it with the region and model.
    """
    found: dict[str, bytes] = {}
    for rel in rels:
        data = (pending or {}).get(rel)
        if data is None:
            path = root / rel
            if not path.is_file():
                continue
            data = path.read_bytes()
        found[rel] = data
    return found
