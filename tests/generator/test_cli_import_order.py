"""Importing the CLI's modules in any order gives the whole command tree.

A plugin, a test or a docs tool may import a command module before ``kubevc.generator.cli``;
the ``kubevc-gen`` tree must not depend on who came first. Every order is tried in one fresh
interpreter, with the CLI's modules dropped from ``sys.modules`` before each order (orders that
share a prefix after which everything is loaded are checked once: see ``walk``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from kubevc.generator.cli import cli

from .test_help_golden import COMMANDS

SCRIPT = r"""
import importlib, json, math, pkgutil, sys
import click
import kubevc.generator as gen

def cli_modules():
    names = ["kubevc.generator.cli"]
    cli_pkg = importlib.import_module("kubevc.generator.cli")
    if hasattr(cli_pkg, "__path__"):  # the CLI as a package: its submodules
        names += [f"kubevc.generator.cli.{m.name}" for m in pkgutil.iter_modules(cli_pkg.__path__)
                  if m.name != "__main__"]
    names += [f"kubevc.generator.{m.name}" for m in pkgutil.iter_modules(gen.__path__)
              if m.name.startswith("cli_")]
    return names

def tree(group, prefix=()):
    out = [" ".join(prefix)]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += tree(cmd, (*prefix, name))
        else:
            out.append(" ".join((*prefix, name)))
    return out

modules = cli_modules()
bad = {}
orders = 0


def fresh(prefix):
    # drop the CLI's modules, then import prefix in that order
    for name in [n for n in sys.modules if n in modules or n.startswith("kubevc.generator.cli")]:
        del sys.modules[name]
    for name in prefix:
        importlib.import_module(name)


def walk(prefix):
    # Every order starting with prefix. Once every module is loaded the remaining imports run no
    # code (they are in sys.modules), so all completions of the prefix give the same tree: one
    # check covers them all (an exact count of orders, not a sample).
    global orders
    fresh(prefix)
    rest = [m for m in modules if m not in prefix]
    if all(m in sys.modules for m in rest):
        orders += math.factorial(len(rest))
        got = sorted(tree(sys.modules["kubevc.generator.cli"].cli))
        if got != EXPECTED:
            bad[" ".join(prefix)] = sorted(set(EXPECTED) - set(got))
        return
    for name in rest:
        walk([*prefix, name])


walk([])
first_bad = dict(list(bad.items())[:5])
print(json.dumps({"modules": modules, "orders": orders, "bad": first_bad, "nbad": len(bad)}))
"""


def test_every_import_order_gives_the_whole_tree() -> None:
    expected = sorted(" ".join(p) for p in COMMANDS)
    assert len(expected) > 20 and "model promote" in expected and "status" in expected
    code = f"EXPECTED = {expected!r}\n" + SCRIPT
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=Path(__file__).parent
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["modules"]) >= 2
    assert result["orders"] == math.factorial(len(result["modules"]))  # every order was covered
    assert result["nbad"] == 0, f"commands missing after these import orders: {result['bad']}"


def test_the_tree_has_every_group() -> None:
    assert {"region", "model", "hub", "node", "cluster", "status", "reconcile", "suspend", "resume"} <= set(
        cli.commands
    )
