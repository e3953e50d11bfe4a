"""Every command's --help shows an example."""

from __future__ import annotations

import click

from kubevc.generator.cli import cli

from .conftest import run_gen

# `node` and `cluster` come from cli_node.py (owned by kubevc.nodeprep; tested in tests/nodeprep).
NODEPREP_GROUPS = {"node", "cluster"}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in group.commands.items():
        if not prefix and name in NODEPREP_GROUPS:
            continue
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, (*prefix, name)))
        else:
            out.append((*prefix, name))
    return out


def test_every_command_has_an_example() -> None:
    commands = _commands(cli)
    assert ("region", "add") in commands and ("validate",) in commands and ("init",) in commands
    for path in commands:
        result = run_gen(*path, "--help")
        assert result.exit_code == 0, path
        assert "Example" in result.output, f"kubevc-gen {' '.join(path)} --help has no example"
