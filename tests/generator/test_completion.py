"""Shell completion of region and model names, through click's completion protocol
(``_KUBEVC_GEN_COMPLETE=bash_complete`` with ``COMP_WORDS``/``COMP_CWORD``), as bash calls it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from kubevc.generator.cli import cli

ENTRY = "from kubevc.generator.cli import main; main()"


def _complete(words: str, cwd: Path, shell: str = "bash") -> list[str]:
    """What the shell would offer for the last word of ``words`` (a trailing space: a new word)."""
    parts = words.split()
    cword = len(parts) if words.endswith(" ") else len(parts) - 1
    env = dict(os.environ, _KUBEVC_GEN_COMPLETE=f"{shell}_complete", COMP_WORDS=words, COMP_CWORD=str(cword))
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if "," in line]


def test_region_arguments_and_options_complete_region_names(fleet: Path) -> None:
    assert _complete("kubevc-gen region show ", fleet) == ["busan", "seoul"]
    assert _complete("kubevc-gen region set s", fleet) == ["seoul"]
    assert _complete("kubevc-gen validate --region b", fleet) == ["busan"]
    assert _complete("kubevc-gen node add ", fleet) == ["busan", "seoul"]
    assert _complete("kubevc-gen status ", fleet) == ["busan", "seoul"]


def test_model_names_come_from_the_region_files(fleet: Path, tmp_path: Path) -> None:
    region = fleet / "regions/seoul/region.yaml"
    region.write_text(
        region.read_text().replace("models: []", "models:\n  - name: yolov5\n    basePath: /m/y\n")
    )
    offered = _complete("kubevc-gen model promote ", fleet)
    assert "yolov5" in offered
    assert _complete(f"kubevc-gen --fleet {fleet} model promote y", tmp_path) == ["yolov5"]  # --fleet read
    assert _complete("kubevc-gen model promote ", tmp_path) == []  # not a fleet repo: nothing, no error


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_scripts_are_generated(shell: str) -> None:
    env = dict(os.environ, _KUBEVC_GEN_COMPLETE=f"{shell}_source")
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0 and "_KUBEVC_GEN_COMPLETE" in proc.stdout


def test_every_region_parameter_has_a_completer() -> None:
    def params(cmd: click.Command) -> list[click.Parameter]:
        if isinstance(cmd, click.Group):
            return [p for c in cmd.commands.values() for p in params(c)]
        return list(cmd.params)

    regional = [p for p in params(cli) if p.name in ("region", "regions")]
    assert regional and all(p._custom_shell_complete is not None for p in regional)
