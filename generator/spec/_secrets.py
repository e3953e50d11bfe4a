"""SOPS-encrypted Secrets of a region: where each lives and what the manifest holds (before encryption).

``kubevc-gen secret set REGION NAME`` writes ``apps/<region>/secrets/<name>.sops.yaml`` (a Secret
encrypted with sops for the age recipients in ``.sops.yaml``); the region spec lists the names
(``secrets:``) and the render lists the files in ``apps/<region>/kustomization.yaml``.
No I/O here: encryption lives in :mod:`kubevc.generator.repo`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from ._names import check_name

# A Secret data key: what `kubectl create secret --from-literal KEY=...` accepts.
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
SECRET_TYPE = re.compile(r"^[-._a-zA-Z0-9/]{1,253}$")
SOPS_SUFFIX = ".sops.yaml"


def secret_file(region: str, name: str) -> str:
    """``apps/<region>/secrets/<name>.sops.yaml``: where ``secret set`` writes Secret ``name``."""
    return f"apps/{region}/secrets/{name}{SOPS_SUFFIX}"


def secret_resource(name: str) -> str:
    """The entry of ``apps/<region>/kustomization.yaml`` for Secret ``name``."""
    return f"secrets/{name}{SOPS_SUFFIX}"


def check_secret_key(key: str) -> str:
    if not SECRET_KEY.match(key):
        raise SpecError(
            f"secret key {key!r} is not a valid Secret data key (letters, digits, '-', '_' and '.')"
        )
    return key


def secret_manifest(
    name: str,
    namespace: str,
    entries: Mapping[str, bytes],
    secret_type: str = "Opaque",  # noqa: S107  (a Secret *type*)
) -> dict[str, Any]:
    """The Secret to encrypt: every value base64 under ``data`` (sops encrypts each one)."""
    check_name(name, "secret name")
    check_name(namespace, "namespace")
    if not entries:
        raise SpecError("a secret needs at least one --from-file KEY=PATH or --from-literal KEY=VALUE")
    if not SECRET_TYPE.match(secret_type):
        raise SpecError(f"secret type {secret_type!r} is not a valid Secret type")
    for key in entries:
        check_secret_key(key)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": secret_type,
        "data": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(entries.items())},
    }
