"""``kubevc-gen validate``: check the rendered fleet tree the way the clusters will see it.

One module per check that stands alone: :mod:`._schema` (kubernetes-validate), :mod:`._checkov`
(policy), :mod:`._secrets` (plain-text Secrets); the chain Flux follows per region (kustomize
builds, Flux objects, Helm renders) is walked by :mod:`._validator`; findings and their table
are :mod:`._report`.
"""

from ._checkov import CHECKOV_SKIPS
from ._report import CHECKS, SHARED, Finding, Progress, Report, print_report
from ._schema import KUBE_VERSION
from ._tools import checkov_path, kubectl_path
from ._validator import CHECKOV_BATCH, validate_fleet

__all__ = [
    "CHECKOV_BATCH",
    "CHECKOV_SKIPS",
    "CHECKS",
    "KUBE_VERSION",
    "SHARED",
    "Finding",
    "Progress",
    "Report",
    "checkov_path",
    "kubectl_path",
    "print_report",
    "validate_fleet",
]
