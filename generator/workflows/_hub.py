"""Workflows of the monitoring hub: ``hub set`` and ``hub remove``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import SpecError
from ..render import plan_render
from ..repo import (
    ChangeOptions,
    ChangeResult,
    Fleet,
    apply_change,
    format_validation_error,
    hub_to_yaml,
    load_hub,
    missing_credentials,
)
from ..spec import HUB_FILE, HubSpec, check_hub_against_regions
from ._secrets import encrypted_secret

HUB_KEYS = (
    "apiEndpoint",
    "kubeContext",
    "retention",
    "remoteWriteUrl",
    "credentialsSecret",
    "ingressClassName",
)


@dataclass(frozen=True)
class HubSetResult:
    result: ChangeResult
    spec: HubSpec
    missing_credentials: list[str]


REMOTE_WRITE_FILE = "remote-write.sops.yaml"
MONITORING_NS = "monitoring"


def set_hub(
    fleet: Fleet,
    changes: dict[str, str | None],
    options: ChangeOptions,
    credentials: tuple[str, bytes] | None = None,
) -> HubSetResult:
    """``hub set``: create or change ``hub/hub.yaml`` (keys not given keep their value), one commit.

    ``credentials`` (username, password): encrypted with sops into every agent folder as
    ``remote-write.sops.yaml`` (Secret :attr:`HubSpec.credentials_secret`), in the same commit.
    """
    path = fleet.root / HUB_FILE
    current = load_hub(fleet.root)
    data: dict[str, Any] = current.to_yaml_data() if current is not None else {}
    for key, value in changes.items():
        if value is not None:
            data[key] = value
    if "apiEndpoint" not in data:
        raise SpecError("the first `hub set` needs --api-endpoint https://HOST:6443")
    try:
        spec = HubSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [p.replace("region spec", "hub spec") for p in format_validation_error(exc, HUB_FILE)]
        ) from None
    regions = fleet.load_all()
    problems = check_hub_against_regions(spec, regions)
    if problems:
        raise SpecError(problems)
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    changed = [k for k in HUB_KEYS if k in data]
    message = f"hub set ({', '.join(changed)})" if current is not None else f"hub set {spec.api_endpoint}"
    secrets: dict[str, bytes] = {}
    if credentials is not None:
        username, password = credentials
        for region in regions:
            if region.monitoring:
                rel = f"infrastructure/agents/{region.name}/{REMOTE_WRITE_FILE}"
                entries = {"username": username.encode(), "password": password}
                secrets[rel] = encrypted_secret(fleet, rel, spec.credentials_secret, MONITORING_NS, entries)
        message += " with remote-write credentials"
    change = plan_render(fleet, message, regions, hub=spec, pending=secrets)
    change.files.update(secrets)
    change.files[HUB_FILE] = hub_to_yaml(spec, previous).encode()
    result = apply_change(fleet, change, options)
    return HubSetResult(result, spec, missing_credentials(fleet, regions))


def remove_hub(fleet: Fleet, options: ChangeOptions) -> ChangeResult:
    """``hub remove``: delete hub/hub.yaml and the hub's tree; regions get their full stack back."""
    if load_hub(fleet.root) is None:
        raise SpecError(f"there is no monitoring hub ({HUB_FILE} does not exist)")
    change = plan_render(fleet, "hub remove", hub=None)
    change.files[HUB_FILE] = None
    return apply_change(fleet, change, options)
