"""The region parse cache gives the spec a fresh parse gives; a bad file is never cached."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from kubevc.generator.errors import SpecError
from kubevc.generator.repo import Fleet
from kubevc.generator.repo import _parse_cache as parse_cache


def test_a_cached_parse_gives_the_same_spec(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.rmtree(fleet / ".git" / parse_cache.PARSE_CACHE, ignore_errors=True)  # the fixture's commands
    first = Fleet.find(fleet).load("seoul")
    entries = list((fleet / ".git" / parse_cache.PARSE_CACHE).iterdir())
    assert len(entries) == 1
    monkeypatch.setattr("kubevc.generator.repo._fleet.parse_region", lambda *_a: pytest.fail("parsed again"))
    assert Fleet.find(fleet).load("seoul") == first
    monkeypatch.undo()
    entries[0].write_bytes(entries[0].read_bytes()[:40])  # truncated: a miss, parsed again
    assert Fleet.find(fleet).load("seoul") == first


def test_a_bad_file_is_refused_every_time(fleet: Path) -> None:
    shutil.rmtree(fleet / ".git" / parse_cache.PARSE_CACHE, ignore_errors=True)
    region = fleet / "regions/seoul/region.yaml"
    region.write_text(region.read_text().replace("distribution: k3s", "distribution: nope"))
    for _ in range(2):
        with pytest.raises(SpecError) as exc:
            Fleet.find(fleet).load("seoul")
        assert "regions/seoul/region.yaml" in str(exc.value.problems[0])
    assert not (fleet / ".git" / parse_cache.PARSE_CACHE).exists()


def _entries(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in folder.glob("*.json")}


def _fill(folder: Path, count: int, size: int = 100) -> list[Path]:
    """``count`` entries, the first used longest ago (one minute apart)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    paths = []
    for i in range(count):
        path = folder / f"{i:04d}.json"
        path.write_bytes(b"x" * size)
        os.utime(path, (now - 60 * (count - i), now - 60 * (count - i)))
        paths.append(path)
    return paths


def test_prune_keeps_the_most_recently_used_within_the_limits(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    paths = _fill(folder, 20)
    assert parse_cache.prune(folder, max_entries=40) == 0  # within the limit: nothing goes
    assert parse_cache.prune(folder, max_entries=8) == 14  # over it: down to three quarters
    assert sorted(_entries(folder)) == [p.name for p in paths[-6:]]
    paths = _fill(tmp_path / "big", 10, size=1000)
    assert parse_cache.prune(tmp_path / "big", max_entries=100, max_bytes=4000) == 7
    assert sorted(_entries(tmp_path / "big")) == [p.name for p in paths[-3:]]


def test_prune_removes_entries_unused_for_long_and_dead_temp_files(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    paths = _fill(folder, 3)
    old = time.time() - parse_cache.UNUSED_SECONDS - 60
    os.utime(paths[1], (old, old))
    tmp = folder / ".abc.123.tmp"
    tmp.write_bytes(b"half")
    os.utime(tmp, (old, old))
    assert parse_cache.prune(folder, max_entries=100) == 1
    assert sorted(_entries(folder)) == [paths[0].name, paths[2].name] and not tmp.exists()


def test_a_hit_marks_the_entry_used_and_a_write_prunes(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fleet / ".git" / parse_cache.PARSE_CACHE
    shutil.rmtree(folder, ignore_errors=True)
    monkeypatch.setattr(parse_cache, "_pruned", set())
    Fleet.find(fleet).load("seoul")  # one entry, written (and the cache pruned) by this process
    (entry,) = folder.glob("*.json")
    old = time.time() - 2 * parse_cache.REFRESH_SECONDS
    os.utime(entry, (old, old))
    Fleet.find(fleet).load("seoul")  # a hit
    assert entry.stat().st_mtime > old + parse_cache.REFRESH_SECONDS
    # a process that writes an entry prunes the cache once: old entries beyond the limit go
    monkeypatch.setattr(parse_cache, "_pruned", set())
    monkeypatch.setattr(parse_cache, "MIN_ENTRIES", 8)
    monkeypatch.setattr(parse_cache, "ENTRIES_PER_REGION", 1)
    _fill(folder, 20)
    Fleet.find(fleet).load("busan")  # a miss: written, then pruned
    kept = _entries(folder)
    assert len(kept) == 6 and entry.name in kept  # the most recently used stay (seoul's, busan's)
    assert Fleet.find(fleet).load("seoul").name == "seoul"
