"""A fleet repo on disk: region files in and out (comments kept), the fleet config, the repo root.

Loading a file turns every problem into a :class:`~kubevc.generator.errors.SpecError` whose lines
read ``regions/seoul/region.yaml:7: nodes[0].sshUsr: unknown key``.
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import SpecError, YamlError
from ..spec import FLEET_MARKER, FleetConfig, RegionSpec, check_name
from . import _yamlio as yamlio
from ._bounded import read_yaml_file
from ._git import Git
from ._parse_cache import cached_plain
from ._problems import format_validation_error
from ._render_state import RegionStamp, file_stat, sha256_hex


def parse_region(text: str, filename: str = "region.yaml") -> tuple[RegionSpec, Any]:
    """Parse and validate region YAML; return the spec and the round-trip document."""
    try:
        raw = yamlio.load_roundtrip(text, filename)
    except YamlError as exc:
        raise SpecError(str(exc)) from None
    if not isinstance(raw, dict):
        raise SpecError(f"{filename}:1: a region file must be a mapping of keys to values")
    try:
        spec = RegionSpec.model_validate(yamlio.to_plain(raw))
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, filename, raw)) from None
    return spec, raw


def region_path(fleet_root: Path, name: str) -> Path:
    check_name(name)
    return fleet_root / "regions" / name / "region.yaml"


def load_region(fleet_root: Path, name: str) -> RegionSpec:
    """Load and validate ``regions/<name>/region.yaml``."""
    return read_region(fleet_root, name)[0]


def read_region(fleet_root: Path, name: str) -> tuple[RegionSpec, str]:
    """:func:`load_region`'s spec and the text it was parsed from."""
    try:
        check_name(name)
    except SpecError as exc:  # a folder someone made by hand: say which
        raise SpecError(
            [f"regions/{name}/: folder name is not a valid region: {p}" for p in exc.problems]
        ) from None
    path = region_path(fleet_root, name)
    rel = path.relative_to(fleet_root).as_posix()
    if not path.is_file():
        raise SpecError(f"region {name!r} not found ({rel} does not exist)")
    try:
        text = read_yaml_file(path, rel)
    except YamlError as exc:
        raise SpecError(str(exc)) from None
    spec = _parse_region_cached(fleet_root, text, rel)
    if spec.name != name:
        raise SpecError(f"{rel}: name: {spec.name!r} does not match its folder regions/{name}/")
    return spec, text


def _parse_region_cached(fleet_root: Path, text: str, rel: str) -> RegionSpec:
    """:func:`parse_region`'s spec, the file's plain data taken from the parse cache when its text
    was parsed before (:mod:`._parse_cache`); the spec is validated from it either way."""
    parsed: list[RegionSpec] = []

    def parse() -> Any:
        spec, raw = parse_region(text, rel)
        parsed.append(spec)
        return yamlio.to_plain(raw)

    plain = cached_plain(fleet_root, text, parse)
    if parsed:
        return parsed[0]
    try:
        return RegionSpec.model_validate(plain)
    except ValidationError:  # the spec rules changed since: the parse gives the positioned error
        return parse_region(text, rel)[0]


REGION_HEADER = (
    "Region spec: the source of truth for this region's part of the fleet.\n"
    "Edit it by hand or with `kubevc-gen region set`, then run `kubevc-gen render`."
)


def merge_into(target: Any, source: Any) -> Any:
    """Copy ``source`` (plain data) into round-trip ``target`` keeping comments and key order."""
    if isinstance(target, CommentedMap) and isinstance(source, dict):
        for key in [k for k in target if k not in source]:
            del target[key]
        for key, value in source.items():
            if key in target:
                target[key] = merge_into(target[key], value)
            else:
                target[key] = value
        return target
    if isinstance(target, CommentedSeq) and isinstance(source, list):
        while len(target) > len(source):
            target.pop()
        for i, value in enumerate(source):
            if i < len(target):
                target[i] = merge_into(target[i], value)
            else:
                target.append(value)
        return target
    if type(target) is not type(source) and str(target) == str(source) and isinstance(source, str):
        return target  # keep the quoting style of an unchanged string
    return source


def region_to_yaml(spec: RegionSpec, previous_text: str | None = None) -> str:
    """Serialise ``spec``; when ``previous_text`` is given its comments and key order are kept."""
    data = spec.to_yaml_data()
    if previous_text is None:
        doc = yamlio.load_roundtrip(yamlio.dump_generated(data, REGION_HEADER))
        return yamlio.dump_roundtrip(doc)
    doc = yamlio.load_roundtrip(previous_text)
    doc = merge_into(doc, data)
    return yamlio.dump_roundtrip(doc)


def save_region(fleet_root: Path, spec: RegionSpec) -> Path:
    """Write ``regions/<name>/region.yaml`` atomically, keeping comments of an existing file.

    This writes only; to write *and* commit as one operation use
    :func:`kubevc.generator.workflows.write_regions`.
    """
    path = region_path(fleet_root, spec.name)
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    yamlio.atomic_write(path, region_to_yaml(spec, previous).encode())
    return path


@dataclass(frozen=True)
class Fleet:
    """A fleet repo on disk: its root, its regions and its git helper.

    Typical use (e.g. ``kubevc-gen node add``)::

        fleet = Fleet.find(Path.cwd())
        spec = fleet.load("seoul")
        spec.nodes.append(NodeSpec(host="10.0.0.5", role="agent"))
        workflows.write_regions(fleet, [spec], message="node add seoul 10.0.0.5", options=opts)
    """

    root: Path

    @classmethod
    def find(cls, start: Path) -> Fleet:
        """The fleet repo at ``start`` (the ``--fleet`` option); error when it is not one."""
        root = start.resolve()
        if not (root / FLEET_MARKER).is_file():
            raise SpecError(
                f"{root} is not a kubevc fleet repo (no {FLEET_MARKER}); "
                "create one with `kubevc-gen init PATH` or pass --fleet PATH"
            )
        if not (root / ".git").exists():
            raise SpecError(f"{root} is not a git repository (fleet repos are git work trees)")
        return cls(root)

    @property
    def config(self) -> FleetConfig:
        path = self.root / FLEET_MARKER
        raw = yamlio.load_roundtrip(read_yaml_file(path, FLEET_MARKER), FLEET_MARKER)
        try:
            return FleetConfig.model_validate(yamlio.to_plain(raw or {}))
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc, FLEET_MARKER, raw)) from None

    @property
    def git(self) -> Git:
        return Git(self.root)

    def region_names(self) -> list[str]:
        base = self.root / "regions"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "region.yaml").is_file())

    def regions(self) -> Iterator[RegionSpec]:
        for name in self.region_names():
            yield self.load(name)

    def load(self, name: str) -> RegionSpec:
        return load_region(self.root, name)

    def load_all(self) -> list[RegionSpec]:
        """Every region, all problems collected into one :class:`SpecError`."""
        return self.load_all_stamped()[0]

    def load_all_stamped(self, skip: Container[str] = ()) -> tuple[list[RegionSpec], dict[str, RegionStamp]]:
        """:meth:`load_all` (except the regions in ``skip``, not read at all), and a stamp of each
        region file whose ``stat`` did not change while it was read (for
        :class:`~kubevc.generator.repo.RenderState`)."""
        specs: list[RegionSpec] = []
        stamps: dict[str, RegionStamp] = {}
        problems: list[str] = []
        for name in self.region_names():
            if name in skip:
                continue
            path = self.root / "regions" / name / "region.yaml"
            seen = time.time_ns()
            before = file_stat(path)
            try:
                spec, text = read_region(self.root, name)
            except SpecError as exc:
                problems.extend(exc.problems)
                continue
            specs.append(spec)
            if before is not None and file_stat(path) == before:
                stamps[name] = RegionStamp(before, seen, sha256_hex(text.encode("utf-8")))
        if problems:
            raise SpecError(problems)
        return specs, stamps
