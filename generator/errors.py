"""Every error the generator raises on purpose, under one base: :class:`KubevcError`.

A command catches :class:`KubevcError` subclasses to print one clear line and exit non-zero
(``kubevc.generator.cli``); anything else is a bug and keeps its traceback. The subclasses keep
their historical second base (``ValueError``, ``RuntimeError``) so existing ``except`` clauses
still match.
"""

from collections.abc import Sequence as _Sequence

__all__ = [
    "FleetBusyError",
    "GitError",
    "KubevcError",
    "RegionFault",
    "SpecError",
    "StoreError",
    "YamlError",
]


class KubevcError(Exception):
    """Base of the generator's own errors."""


class SpecError(KubevcError, ValueError):
    """Invalid input; ``problems`` holds one human-readable line per finding."""

    def __init__(self, problems: _Sequence[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class YamlError(KubevcError, ValueError):
    """A YAML file could not be parsed; the message names the file and line."""


class GitError(KubevcError, RuntimeError):
    """A git command failed; the message has git's own stderr."""


class StoreError(SpecError):
    """A model store problem (bad source, existing version, path outside the store...)."""


class RegionFault(KubevcError):
    """A short, printable reason why (part of) a region could not be read; never a traceback."""

    def __init__(self, reason: str, unreachable: bool = True, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.status = status


class FleetBusyError(KubevcError):
    """Another ``kubevc-gen`` holds the fleet repo's lock; the message says who and since when."""
