"""``--help`` of every ``kubevc-gen`` command and group is byte-identical to the recorded text.

The golden files under ``golden/help/`` were written from the CLI before the generator was split
into layers (issue 14); a refactoring that changes an option, a help line or drops a command fails
here. To record a deliberate change: ``KUBEVC_UPDATE_GOLDEN=1 pytest tests/generator/test_help_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kubevc.generator.cli import cli

GOLDEN = Path(__file__).parent / "golden" / "help"
UPDATE = os.environ.get("KUBEVC_UPDATE_GOLDEN") == "1"
# A wide terminal: the help is then laid out by the CLI's own max_content_width, not the terminal's.
COLUMNS = "200"


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if isinstance(cmd, click.Group):
            out.extend(_paths(cmd, (*prefix, name)))
        else:
            out.append((*prefix, name))
    return out


def _golden_name(path: tuple[str, ...]) -> str:
    return "_".join(("kubevc-gen", *path)) + ".txt"


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner(env={"COLUMNS": COLUMNS}).invoke(
        cli, [*path, "--help"], prog_name="kubevc-gen", catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


COMMANDS = _paths(cli)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "kubevc-gen")
def test_help_is_unchanged(path: tuple[str, ...]) -> None:
    text = _help(path)
    golden = GOLDEN / _golden_name(path)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(text.encode())
    assert golden.is_file(), f"no golden help for `kubevc-gen {' '.join(path)}` (a new command?)"
    assert text.encode() == golden.read_bytes()


def test_no_command_is_lost() -> None:
    """Every recorded command still exists (a lost command group has no help to compare)."""
    recorded = {p.name for p in GOLDEN.glob("*.txt")}
    assert recorded == {_golden_name(p) for p in COMMANDS}
