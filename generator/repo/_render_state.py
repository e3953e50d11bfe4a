"""What the generated tree in the work tree was last rendered from, so that a command changing a
few regions can render only those (and the shared files) instead of the whole fleet.

After a render is applied to the work tree, ``.git/kubevc-gen/render-state.json`` records the
generator's code digest, a SHA-256 of every other file the regions' files were rendered from
(``kubevc-fleet.yaml``, ``hub/hub.yaml``, the model label files) and, for each region, the
``stat`` of its ``region.yaml`` (device, inode, size, modification and change times) as it was
read. A later command trusts a region whose ``region.yaml`` still has that ``stat`` without
reading it: any write changes the change time (``ctime``, which nothing but the kernel sets).

File times come from a coarse clock, so a file written within the same tick as it was read would
keep its ``stat`` through a second write. Like git's "racily clean" index entries, a stamp taken
less than :data:`RACY_NS` after the file's change time is checked by content (its SHA-256) instead;
a later command refreshes it once it is old enough. Everything here is a hint: a missing,
damaged or stale state makes the caller render everything, which is always right.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._lock import git_dir_of
from ._yamlio import atomic_write

RENDER_STATE = "kubevc-gen/render-state.json"  # in the fleet repo's git folder: never committed
RACY_NS = 50_000_000  # > the kernel's file-time tick (a jiffy: 1-10 ms)
COARSE_RACY_NS = 2_000_000_000  # file systems with whole-second times (FAT: 2 s)
ABSENT = ""  # the digest of a file that does not exist

Stat = tuple[int, int, int, int, int]


def file_stat(path: Path) -> Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _racy(stat: Stat, seen_ns: int) -> bool:
    """The file changed too shortly before ``seen_ns`` for its ``stat`` alone to tell a later write."""
    _dev, _ino, _size, mtime_ns, ctime_ns = stat
    whole_seconds = mtime_ns % 1_000_000_000 == 0 and ctime_ns % 1_000_000_000 == 0
    return ctime_ns >= seen_ns - (COARSE_RACY_NS if whole_seconds else RACY_NS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digests(root: Path, rels: Iterable[str]) -> dict[str, str]:
    """SHA-256 of each file ``rels`` of the fleet repo (:data:`ABSENT` for a missing one)."""
    digests: dict[str, str] = {}
    for rel in rels:
        try:
            digests[rel] = sha256_hex((root / rel).read_bytes())
        except OSError:
            digests[rel] = ABSENT
    return digests


@dataclass(frozen=True)
class RegionStamp:
    """A region file as it was read: its ``stat``, when that was taken, and its content's SHA-256."""

    stat: Stat
    seen_ns: int
    sha256: str

    def holds(self, path: Path) -> tuple[bool, RegionStamp]:
        """Whether ``path`` is still the file stamped (and a fresher stamp of it when it is)."""
        seen = time.time_ns()
        now = file_stat(path)
        if now is None or now != self.stat:
            return False, self
        if not _racy(self.stat, self.seen_ns):
            return True, self
        try:  # stamped in the same tick as it was written: compare the content
            data = path.read_bytes()
        except OSError:
            return False, self
        if file_stat(path) != now or sha256_hex(data) != self.sha256:
            return False, self
        return True, RegionStamp(now, seen, self.sha256)

    def to_json(self) -> list[Any]:
        return [*self.stat, self.seen_ns, self.sha256]

    @classmethod
    def from_json(cls, value: Any) -> RegionStamp | None:
        if (
            not isinstance(value, list)
            or len(value) != 7
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value[:6])
            or not isinstance(value[6], str)
        ):
            return None
        dev, ino, size, mtime, ctime, seen = value[:6]
        return cls((dev, ino, size, mtime, ctime), seen, value[6])


@dataclass
class RenderState:
    """What the generated tree was rendered from (see the module docstring).

    ``code``: the generator's digest; ``inputs``: SHA-256 of each non-region file the regions'
    files depend on, by repo path; ``regions``: each region file's stamp; ``written``: region
    files the change about to be applied writes (name -> SHA-256 of the new bytes), stamped by
    :meth:`save` once they are on disk.
    """

    code: str
    inputs: dict[str, str]
    regions: dict[str, RegionStamp]
    written: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def path(root: Path) -> Path:
        return git_dir_of(root) / RENDER_STATE

    @classmethod
    def load(cls, root: Path) -> RenderState | None:
        """The recorded state, or None (none yet, unreadable or damaged)."""
        try:
            data = json.loads(cls.path(root).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        code, inputs, regions = data.get("code"), data.get("inputs"), data.get("regions")
        if not isinstance(code, str) or not isinstance(inputs, dict) or not isinstance(regions, dict):
            return None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()):
            return None
        stamps: dict[str, RegionStamp] = {}
        for name, value in regions.items():
            stamp = RegionStamp.from_json(value)
            if not isinstance(name, str) or stamp is None:
                return None
            stamps[name] = stamp
        return cls(code, dict(inputs), stamps)

    def unchanged_regions(
        self, root: Path, code: str, besides: Iterable[str]
    ) -> dict[str, RegionStamp] | None:
        """When every region but ``besides`` (and every input) is as recorded, their (refreshed)
        stamps; None when anything differs, so the caller renders everything.

        Reads no region file (only ``stat``), except one stamped too soon after it was written.
        """
        if code != self.code or file_digests(root, self.inputs) != self.inputs:
            return None
        skip = set(besides)
        folder = root / "regions"
        try:
            names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        except OSError:
            return None
        held: dict[str, RegionStamp] = {}
        for name in names:
            if name in skip:
                continue
            path = folder / name / "region.yaml"
            stamp = self.regions.get(name)
            if stamp is None:
                if file_stat(path) is None:  # a folder without a region file is no region
                    continue
                return None
            same, fresh = stamp.holds(path)
            if not same:
                return None
            held[name] = fresh
        if set(self.regions) - skip - set(held):  # a recorded region is gone
            return None
        return held

    def save(self, root: Path) -> None:
        """Stamp the files in :attr:`written` and write the state (atomically; errors ignored:
        without it the next command renders everything, nothing else)."""
        regions = dict(self.regions)
        for name, digest in self.written.items():
            path = root / "regions" / name / "region.yaml"
            seen = time.time_ns()
            stat = file_stat(path)
            if stat is None:
                regions.pop(name, None)
            else:
                regions[name] = RegionStamp(stat, seen, digest)
        data = {
            "code": self.code,
            "inputs": self.inputs,
            "regions": {name: stamp.to_json() for name, stamp in sorted(regions.items())},
        }
        with contextlib.suppress(OSError):
            atomic_write(self.path(root), json.dumps(data, sort_keys=True).encode())
