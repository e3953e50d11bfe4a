"""Name and label checks shared by every spec (regions, models, the hub, profiles)."""

import re

from ..errors import SpecError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A Kubernetes label value (what Prometheus' region label and kubevc.io/region both must be).
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_name(name: str, what: str = "region name") -> str:
    """Return ``name`` if it is a DNS-1123 label (so it can neither escape the repo nor clash)."""
    if not isinstance(name, str) or not DNS1123_LABEL.fullmatch(name):
        raise SpecError(
            f"{what} {name!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return name


def check_label_value(value: str, what: str = "region name") -> str:
    """``value`` if it can be a Kubernetes/Prometheus label value (at most 63 characters)."""
    if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value) or not value:
        raise SpecError(
            f"{what} {value!r} is not a valid label value (letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value
