"""Region labels kubevc computes from a region's spec (prefix ``kubevc.io/``), next to the
operator's own ``labels``; selectors (``-l``) and rollout waves match both.

* ``kubevc.io/region``: the region's name (a wave of one region: ``-l kubevc.io/region=seoul``);
* ``kubevc.io/distribution``: ``k3s`` or ``kubeadm``;
* ``kubevc.io/arch``: the region's node architecture, or ``multi`` when it has several;
* ``kubevc.io/arch-<arch>``: ``"true"`` for each architecture present (a label key holds one
  value, so a mixed region is selected by one of its architectures with ``-l kubevc.io/arch-arm64``);
* ``kubevc.io/storage``: ``nfs`` or ``iscsi`` (where the model store lives).

The prefix is kubevc's: an operator's label under it is refused
(:func:`~kubevc.generator.spec.check_user_label_key`), so a computed label is never shadowed.
Pure functions.
"""

from __future__ import annotations

from ._region import RegionSpec

MULTI_ARCH = "multi"


def computed_labels(spec: RegionSpec) -> dict[str, str]:
    """The ``kubevc.io/`` labels of ``spec``, sorted by key."""
    archs = sorted(spec.architectures)
    labels = {
        "kubevc.io/region": spec.name,
        "kubevc.io/distribution": spec.distribution,
        "kubevc.io/arch": archs[0] if len(archs) == 1 else MULTI_ARCH,
        "kubevc.io/storage": spec.storage.kind,
    }
    labels.update({f"kubevc.io/arch-{arch}": "true" for arch in archs})
    return dict(sorted(labels.items()))


def region_labels(spec: RegionSpec) -> dict[str, str]:
    """What a selector matches: the operator's labels and the computed ones."""
    return {**spec.labels, **computed_labels(spec)}
