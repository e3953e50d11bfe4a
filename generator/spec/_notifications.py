"""Notification targets: where Flux's notification-controller sends a region's error events.

A target is one Flux ``Provider`` (``notification.toolkit.fluxcd.io/v1beta3``) of one of the types
the controller knows (Slack, Microsoft Teams, Matrix, a generic webhook, ...). The secret part
(the webhook address or a token) is never in the spec: ``secret`` names a region Secret in
flux-system made with ``kubevc-gen secret set REGION NAME --namespace flux-system
--from-literal address=...`` (item keys ``address``, ``token``, ...), which the Provider refers to.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ._names import check_name

ProviderType = Literal[
    "generic",
    "generic-hmac",
    "slack",
    "msteams",
    "matrix",
    "discord",
    "rocket",
    "googlechat",
    "webex",
    "telegram",
    "lark",
    "opsgenie",
    "pagerduty",
    "alertmanager",
    "grafana",
    "zulip",
]
NOTIFICATIONS_NS = "flux-system"


class NotificationTarget(BaseModel):
    """One Flux ``Provider`` + ``Alert`` pair per region (errors of every Kustomization/HelmRelease)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    name: str
    type: ProviderType
    channel: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    # a non-secret address (e.g. an in-cluster webhook); a secret one goes into `secret` (key address)
    address: Annotated[str, Field(pattern=r"^(http|https)://\S+$", max_length=2048)] | None = None
    secret: str | None = None
    severity: Literal["info", "error"] = "error"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "notification name")

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "notification secret name")
