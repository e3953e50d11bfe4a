"""Progress bars on stderr for the long commands (render, validate, node prepare, model publish).

One helper for every command: a rich bar (or a spinner while the total is unknown) drawn on
stderr only when stderr is a terminal and the output is not a document (``-o json|yaml``). Piped,
redirected or in CI it draws nothing, and stdout always stays the command's result.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ..validate import Progress as ProgressCallback

_COUNT = re.compile(r"\b(\d+)/(\d+)\b")  # "copy 3/12 ...": the step and the total


def wants_progress(output: str = "table", stream: IO[str] | None = None) -> bool:
    """Whether to draw: stderr is a terminal and the output is for people (not json/yaml)."""
    target = stream if stream is not None else sys.stderr
    try:
        tty = target.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        tty = False
    return tty and output not in ("json", "yaml")


class ProgressBar:
    """A bar of ``total`` steps (a spinner until a total is known), or nothing when disabled.

    :meth:`note` shows the current step's text, :meth:`step` also moves the bar when the text says
    ``i/N``, :meth:`update` sets ``done`` of ``total``; all are no-ops when nothing is drawn.
    """

    def __init__(self, description: str, enabled: bool, stream: IO[str] | None = None) -> None:
        self.description = description
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._stream = stream

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            console = Console(file=self._stream or sys.stderr, force_terminal=True)
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("[dim]{task.fields[step]}"),
                console=console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=None, step="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def note(self, message: str) -> None:
        """Show ``message`` as the current step."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, step=message[:80])

    def step(self, message: str) -> None:
        """Show ``message`` and, when it says ``i/N`` (``copy 3/12 ...``), move the bar there."""
        count = _COUNT.search(message)
        if count:
            self.update(int(count.group(1)), int(count.group(2)))
        self.note(message)

    def update(self, done: int, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)


def progress_bar(description: str, output: str = "table", stream: IO[str] | None = None) -> ProgressBar:
    """A :class:`ProgressBar` drawn only on a terminal stderr and never under ``-o json|yaml``."""
    return ProgressBar(description, wants_progress(output, stream), stream)


@contextmanager
def steps(description: str) -> Iterator[ProgressCallback]:
    """A progress callback for a long step-by-step command (node prepare, model publish): a bar
    on a terminal; elsewhere the ``… step`` lines on stderr, as before."""
    with progress_bar(description) as bar:
        if bar.enabled:
            yield bar.step
        else:
            yield lambda message: click.echo(f"… {message}", err=True)
