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
    # Alertmanager (kube-prometheus-stack) gets a receiver for the kubevc alert rules too; false
    # for a type Alertmanager has no receiver for (matrix, ...): Flux events only.
    alertmanager: bool = True
    # The Secret Alertmanager mounts (namespace monitoring, same keys as `secret`); default
    # `<secret>-alertmanager`. A Secret cannot be shared across namespaces, hence a second one.
    alertmanager_secret: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "notification name")

    @field_validator("secret", "alertmanager_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "notification secret name")

    @property
    def effective_alertmanager_secret(self) -> str | None:
        """The monitoring-namespace Secret of this target's Alertmanager receiver (None: no secret part)."""
        if self.alertmanager_secret is not None:
            return self.alertmanager_secret
        return None if self.secret is None else f"{self.secret}-alertmanager"
