"""Label selectors in kubectl's syntax, matched against region labels (``--selector/-l``).

``tier=canary,site!=lab,zone in (kr-1,kr-2),!legacy,gpu`` is five requirements, all of which must
hold: equality (``=``/``==``), inequality (``!=``, also true when the key is absent), set
membership (``in``/``notin``), existence (``key``) and absence (``!key``). Pure functions: the
parser never looks at a fleet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..errors import SpecError

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

# A label key: an optional DNS-subdomain prefix and a name (as in Kubernetes).
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "exists":
            return value is not None
        if self.operator == "!":
            return value is None
        if self.operator == "=":
            return value == self.values[0]
        if self.operator == "!=":
            return value != self.values[0]
        if self.operator == "in":
            return value is not None and value in self.values
        return value not in self.values  # notin: an absent key matches, as in Kubernetes


@dataclass(frozen=True)
class Selector:
    """Requirements that must all hold; ``text`` is what the operator typed (for messages)."""

    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _bad(text: str, why: str) -> SpecError:
    return SpecError(f"selector {text!r}: {why} (syntax: a=b,c!=d,e in (f,g),!h,h)")


def _split(text: str) -> list[str]:
    """Split at the commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
            if depth > 1:
                raise _bad(text, "nested parentheses")
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _bad(text, "')' without '('")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise _bad(text, "'(' without ')'")
    parts.append(current)
    return parts


def _key(text: str, key: str) -> str:
    if not LABEL_KEY.match(key):
        raise _bad(text, f"{key!r} is not a label key")
    return key


def _value(text: str, value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise _bad(text, f"{value!r} is not a label value")
    return value


_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!\s]*)$")


def parse_selector(text: str) -> Selector:
    """Parse a kubectl label selector; a :class:`SpecError` names what is wrong."""
    if not text.strip():
        raise _bad(text, "empty selector")
    requirements: list[Requirement] = []
    for raw in _split(text):
        part = raw.strip()
        if not part:
            raise _bad(text, "empty requirement (a stray comma?)")
        if match := _SET.match(part):
            values = tuple(_value(text, v.strip()) for v in match.group("values").split(","))
            if not any(values):
                raise _bad(text, f"{part!r} lists no values")
            op: Operator = "in" if match.group("op") == "in" else "notin"
            requirements.append(Requirement(_key(text, match.group("key")), op, values))
        elif match := _EQ.match(part):
            op = "!=" if match.group("op") == "!=" else "="
            requirements.append(
                Requirement(_key(text, match.group("key")), op, (_value(text, match.group("value")),))
            )
        elif part.startswith("!"):
            requirements.append(Requirement(_key(text, part[1:].strip()), "!"))
        elif re.fullmatch(r"[^=!\s()]+", part):
            requirements.append(Requirement(_key(text, part), "exists"))
        else:
            raise _bad(text, f"cannot read {part!r}")
    return Selector(text, tuple(requirements))


def parse_label_changes(changes: list[str]) -> tuple[dict[str, str], list[str]]:
    """``region label`` arguments: ``k=v`` sets, ``k-`` removes; returns (to set, to remove)."""
    to_set: dict[str, str] = {}
    to_remove: list[str] = []
    for change in changes:
        if change.endswith("-") and "=" not in change:
            to_remove.append(_label_key(check_user_label_key(change[:-1])))
        elif "=" in change:
            key, value = change.split("=", 1)
            to_set[_label_key(check_user_label_key(key))] = check_label(key, value)
        else:
            raise SpecError(f"label {change!r}: write KEY=VALUE to set or KEY- to remove")
    both = sorted(set(to_set) & set(to_remove))
    if both:
        raise SpecError(f"label {both[0]!r} is both set and removed")
    return to_set, to_remove


# The label prefix of the labels kubevc computes from a region's spec (spec._autolabels).
COMPUTED_PREFIX = "kubevc.io/"


def check_user_label_key(key: str) -> str:
    """``key`` unless it has kubevc's own prefix (a :class:`SpecError` naming the computed labels)."""
    if key.startswith(COMPUTED_PREFIX):
        raise SpecError(
            f"label {key!r}: the {COMPUTED_PREFIX} prefix is kubevc's own (labels computed from the "
            "region's spec: kubevc.io/region, kubevc.io/distribution, kubevc.io/arch, "
            "kubevc.io/arch-<arch>, kubevc.io/storage); choose another key"
        )
    return key


def _label_key(key: str) -> str:
    if not LABEL_KEY.match(key):
        raise SpecError(
            f"label key {key!r} is not a Kubernetes label key ([prefix/]name: letters, digits, "
            "'-', '_', '.', at most 63 characters)"
        )
    return key


def check_label(key: str, value: str) -> str:
    """``value`` if it is a valid Kubernetes label value for ``key``."""
    _label_key(key)
    if len(value) > 63 or not _VALUE.match(value):
        raise SpecError(
            f"label {key}={value!r}: not a label value (letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value
