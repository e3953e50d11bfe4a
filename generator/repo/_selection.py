"""Which regions a ``--selector/-l`` picks: the regions whose labels (their own ``labels`` and the
``kubevc.io/`` ones computed from their spec) match it."""

from __future__ import annotations

from ..errors import SpecError
from ..spec import Selector, region_labels
from ._fleet import Fleet


def select_regions(fleet: Fleet, selector: Selector) -> list[str]:
    """The names of the regions ``selector`` matches, sorted; none is an error, never a no-op."""
    specs = fleet.load_all()
    chosen = [s.name for s in specs if selector.matches(region_labels(s))]
    if not chosen:
        labelled = "; ".join(
            f"{s.name}: {','.join(f'{k}={v}' for k, v in sorted(s.labels.items())) or '-'}" for s in specs
        )
        raise SpecError(
            f"selector {selector.text!r} matches no region (labels: {labelled or 'no regions'}); "
            "label regions with `kubevc-gen region label REGION KEY=VALUE`"
        )
    return chosen
