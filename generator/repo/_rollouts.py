"""Rollout state files: ``rollouts/<id>.yaml``, one per ``kubevc-gen rollout start``.

The files are the operator's history (committed with each step, never pruned by ``render``): a
rollout whose ``phase`` is ``running`` is the one ``rollout next/abort/status`` act on; at most
one runs at a time.
"""

from __future__ import annotations

from ..errors import SpecError, YamlError
from ..spec import ROLLOUTS_DIR, Rollout
from . import _yamlio as yamlio
from ._bounded import read_yaml_file
from ._fleet import Fleet
from ._fleetconfig import parse_document

ROLLOUT_HEADER = (
    "Rollout state, written by `kubevc-gen rollout start|next|abort` (one commit each).\n"
    "Read it with `kubevc-gen rollout status`; do not edit it by hand."
)


def parse_rollout(text: str, filename: str) -> Rollout:
    """Validate the text of a rollout file; problems name the file and line."""
    return parse_document(text, filename, Rollout)


def load_rollouts(fleet: Fleet) -> list[Rollout]:
    """Every rollout of the fleet, oldest first (ids start with their start time)."""
    folder = fleet.root / ROLLOUTS_DIR
    found: list[Rollout] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        rel = path.relative_to(fleet.root).as_posix()
        try:
            rollout = parse_rollout(read_yaml_file(path, rel), rel)
        except YamlError as exc:
            raise SpecError(str(exc)) from None
        if rollout.file != rel:
            raise SpecError(f"{rel}: id {rollout.id!r} does not match the file name")
        found.append(rollout)
    return found


def running_rollout(fleet: Fleet) -> Rollout | None:
    """The rollout in phase ``running``, if any (two running is a hand edit: refused)."""
    running = [r for r in load_rollouts(fleet) if r.phase == "running"]
    if len(running) > 1:
        files = ", ".join(r.file for r in running)
        raise SpecError(f"more than one rollout is running ({files}); abort all but one by hand")
    return running[0] if running else None


def rollout_to_yaml(rollout: Rollout) -> bytes:
    """The state file's bytes (a header that is not the generated-file mark: render keeps it)."""
    return yamlio.dump_generated(rollout.to_yaml_data(), ROLLOUT_HEADER).encode()
