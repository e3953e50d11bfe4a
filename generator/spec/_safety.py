"""Checks of operator input that would otherwise leak a secret or reach a shell.

* Git URLs with embedded credentials (``https://user:token@host/...``) would be committed in the
  region file and every Flux GitRepository rendered from it: refused, and the message shows the URL
  with the credentials replaced by ``***`` (never the secret itself).
* Node hosts end up in SSH and pyinfra inventories: they must be a host name, an IP address or a
  pyinfra connector string (``@local``, ``@ssh/HOST``, ``@docker/ID``, ``@chroot/PATH``), never
  shell text such as ``$(touch x)``.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from ..errors import SpecError

_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_DOCKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CHROOT_PATH = re.compile(r"^/[A-Za-z0-9._/+-]{0,4095}$")
# scheme://userinfo@ anywhere in a text (the validate scan of files already in a repo)
URL_WITH_USERINFO = re.compile(r"\b(https?|ssh|git)://([^/\s@'\"]+)@([^\s'\"]+)")

CONNECTORS = "@local, @ssh/HOST, @docker/ID or @chroot/PATH"


def redact_url(url: str) -> str:
    """``url`` with its user/password part replaced by ``***``."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{head}://***@{rest.split('@', 1)[1]}"


def url_has_credentials(url: str) -> bool:
    """True when ``url`` carries a password or token: any user part over http(s), a password
    over ssh (``ssh://git@host/...`` names only the SSH user and is fine)."""
    try:
        parsed = urlsplit(url.strip())
        username, password = parsed.username, parsed.password
    except ValueError:
        return "@" in url.split("://", 1)[-1].split("/", 1)[0]
    if parsed.scheme in ("http", "https"):
        return bool(username or password)
    return bool(password)


def check_git_url(url: str, key: str) -> str:
    """``url`` unless it embeds credentials; else a :class:`SpecError` naming ``key``, secret hidden."""
    if url_has_credentials(url):
        raise SpecError(
            f"{key}: the git URL embeds credentials ({redact_url(url)}); they would be committed to "
            "the fleet repo: use a URL without them and give Flux a secretRef (a SOPS-encrypted Secret)"
        )
    return url


def is_host_name(value: str) -> bool:
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


def is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]") if value.startswith("[") else value)
    except ValueError:
        return False
    return True


def check_node_host(value: str) -> str:
    """``value`` if it is a host name, an IP address or a pyinfra connector string; else ValueError."""
    if is_address(value) or is_host_name(value) or value == "@local":
        return value
    kind, _, target = value.partition("/")
    if kind == "@ssh" and (is_address(target) or is_host_name(target)):
        return value
    if kind == "@docker" and _DOCKER_ID.match(target):
        return value
    if (
        value.startswith("@chroot/")
        and _CHROOT_PATH.match(value.removeprefix("@chroot"))
        and ".." not in value
    ):
        return value
    raise ValueError(f"{value!r} is not a host name, an IP address or a pyinfra connector ({CONNECTORS})")
