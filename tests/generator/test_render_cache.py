"""The render cache (.git/kubevc-gen/render-cache.json): a region whose inputs did not change is
not rendered again, and a cached region is byte-identical to a fresh render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubevc.generator import render
from kubevc.generator.render import _cache  # where code_digest is looked up
from kubevc.generator.render import _tree as tree_mod  # where region_files is looked up
from kubevc.generator.repo import Fleet, read_label_files
from kubevc.generator.spec import ModelSpec

from .conftest import Gen


def _tree(fleet: Path) -> dict[str, bytes]:
    f = Fleet.find(fleet)
    return render.desired_tree(f, f.load_all())


def _count_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    rendered: list[str] = []
    real = tree_mod.region_files

    def spy(region: Any, cfg: Any, profiles: Any, labels: Any) -> dict[str, bytes]:
        rendered.append(region.name)
        return real(region, cfg, profiles, labels)

    monkeypatch.setattr(tree_mod, "region_files", spy)
    return rendered


def test_cached_regions_are_byte_identical(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = fleet / ".git" / render.RENDER_CACHE
    cache.unlink(missing_ok=True)
    rendered = _count_renders(monkeypatch)
    first = _tree(fleet)
    assert sorted(rendered) == ["busan", "seoul"] and cache.is_file()
    rendered.clear()
    second = _tree(fleet)
    assert rendered == []  # every region came from the cache
    monkeypatch.setenv(render.RENDER_CACHE_ENV, "0")
    fresh = _tree(fleet)
    assert sorted(rendered) == ["busan", "seoul"]
    assert first == second == fresh


def test_a_changed_region_is_rendered_again(gen: Gen, fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(fleet)  # warm the cache
    rendered = _count_renders(monkeypatch)
    result = gen("region", "set", "seoul", "monitoring=false")
    assert result.exit_code == 0, result.output
    assert rendered == ["seoul"]  # busan is unchanged: not rendered
    assert not (fleet / "apps/seoul/kubevc-monitoring-values.yaml").exists()
    monkeypatch.setenv(render.RENDER_CACHE_ENV, "0")
    assert gen("render", "--check").exit_code == 0  # what the cache gave equals a fresh render


def test_labels_files_and_the_generator_code_are_part_of_the_key(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = Fleet.find(fleet)
    seoul = f.load("seoul")
    seoul.models.append(
        ModelSpec(
            name="yolo", base_path="/models/yolo", profile="detection", labels_file="models/yolo/labels.txt"
        )
    )
    labels = fleet / "models/yolo/labels.txt"

    def key() -> str | None:
        return render.region_key(seoul, f.config, read_label_files(fleet, ["models/yolo/labels.txt"]))

    assert key() is None  # missing file: rendered, so it is reported
    labels.parent.mkdir(parents=True)
    labels.write_text("person\ncar\n")
    one = key()
    labels.write_text("person\nbicycle\n")
    two = key()
    assert one and two and one != two
    rendered = _count_renders(monkeypatch)
    render.desired_tree(f, [seoul])
    labels.write_text("person\ncar\n")
    tree = render.desired_tree(f, [seoul])
    assert rendered == ["seoul", "seoul"]
    assert "- car" in tree["apps/seoul/kubevc-gateway-values.yaml"].decode()
    rendered.clear()
    monkeypatch.setattr(_cache, "code_digest", lambda: "another kubevc")
    render.desired_tree(f, [seoul])
    assert rendered == ["seoul"]  # a new generator throws the old entries away


def test_a_damaged_cache_is_ignored(fleet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _tree(fleet)
    cache = fleet / ".git" / render.RENDER_CACHE
    data = json.loads(cache.read_text())
    for entry in data["regions"].values():
        for rel in entry:
            entry[rel] = 42  # not text
    cache.write_text(json.dumps(data))
    assert _tree(fleet) == good
    cache.write_text("{not json")
    assert _tree(fleet) == good
