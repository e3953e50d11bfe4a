"""The region parse cache gives the spec a fresh parse gives; a bad file is never cached."""

from __future__ import annotations

import shutil
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
