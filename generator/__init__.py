"""kubevc.generator: the ``kubevc-gen`` CLI, region/model specs and the fleet tree renderer."""

from pathlib import Path as _Path

__all__ = ["charts_dir"]


def charts_dir() -> _Path:
    """Return the folder holding the project's Helm charts.

    In a wheel the charts are package data at ``kubevc/charts`` (a sibling of this package);
    in an editable install this package is the repository's ``generator/`` folder and the
    charts are the repository's ``charts/`` folder, again a sibling. One rule serves both.
    """
    return _Path(__file__).resolve().parent.parent / "charts"
