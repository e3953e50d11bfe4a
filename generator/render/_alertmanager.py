"""Alertmanager receivers and routes for the kubevc alert rules, from the notification targets.

The targets that make Flux ``Provider`` + ``Alert`` objects (:mod:`._notifications`) also become
kube-prometheus-stack values (``alertmanager.config`` and ``alertmanager.alertmanagerSpec.secrets``)
where an Alertmanager runs: a region's full stack (no hub) or the hub. The route tree:

* the root receiver is ``null`` (as in the chart's own config): an alert no child route takes
  (the stack's ``Watchdog``, info-level noise) goes nowhere;
* per target, one child route for the kubevc rules (``alertname=~"Kubevc.+"``) and one for the
  stack's other ``severity="critical"`` alerts, both ``continue: true`` so every target gets them;
  on the hub a region's own target matches ``region="<r>"`` only and a fleet target leaves out
  the regions that replace it.

Secret parts are never in the values: each receiver reads its URL or token from a file
(``url_file``, ``api_url_file``, ``credentials_file`` ...) of a Secret in the monitoring namespace
that ``alertmanagerSpec.secrets`` mounts under ``/etc/alertmanager/secrets/<name>/<key>``. That
Secret is the target's ``alertmanagerSecret`` (default ``<secret>-alertmanager``), made with
``kubevc-gen secret set REGION NAME --namespace monitoring`` with the keys of the Flux one
(``address``, ``token``). The ``*_file`` fields need Alertmanager >= 0.26 (the chart ships 0.34).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import SpecError
from ..spec import FleetConfig, NotificationTarget, RegionSpec, check_name
from ._notifications import region_targets

SECRETS_DIR = "/etc/alertmanager/secrets"
NULL_RECEIVER = "null"
KUBEVC_ALERTS = 'alertname=~"Kubevc.+"'
OTHER_CRITICAL = ('alertname!~"Kubevc.+"', 'severity="critical"')
# The Flux provider types Alertmanager has a receiver for; the others need `alertmanager: false`.
RECEIVER_TYPES = ("generic", "slack", "msteams", "discord", "telegram", "webex", "opsgenie")


@dataclass(frozen=True)
class Routed:
    """One target as Alertmanager sees it: its receiver name and the extra matchers of its routes."""

    target: NotificationTarget
    receiver: str
    where: str  # the file that declares it, for errors
    matchers: tuple[str, ...] = ()
    region: str | None = None  # the region whose Secret it reads (None: the hub's)


@dataclass
class AlertmanagerConfig:
    """``alertmanager.config`` and the Secrets to mount (names in the monitoring namespace)."""

    receivers: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def values(self) -> dict[str, Any]:
        """The kube-prometheus-stack values (merged over the chart's config: global, inhibit rules stay)."""
        if not self.receivers:
            return {}
        route = {
            "receiver": NULL_RECEIVER,
            "group_by": ["alertname", "region"],
            "routes": [{"receiver": NULL_RECEIVER, "matchers": ['alertname="Watchdog"']}, *self.routes],
        }
        am: dict[str, Any] = {
            "config": {"route": route, "receivers": [{"name": NULL_RECEIVER}, *self.receivers]}
        }
        if self.secrets:
            am["alertmanagerSpec"] = {"secrets": sorted(self.secrets)}
        return {"alertmanager": am}


def receiver_fields(routed: Routed) -> tuple[str, dict[str, Any]]:
    """(``*_configs`` key, one config) of the target's receiver; SpecError for a type without one."""
    target, where = routed.target, routed.where
    secret = target.effective_alertmanager_secret

    def file(key: str) -> str:
        return f"{SECRETS_DIR}/{secret}/{key}"

    def address(plain: str) -> dict[str, Any]:
        if secret is not None:
            return {f"{plain}_file": file("address")}
        return {plain: target.address}

    def token() -> str:
        if secret is None:
            raise SpecError(
                f"{where}: notification {target.name!r} ({target.type}) needs `secret` (key token) "
                "for its Alertmanager receiver"
            )
        return file("token")

    def chat() -> str:
        if not target.channel:
            raise SpecError(f"{where}: notification {target.name!r} ({target.type}) needs `channel`")
        return target.channel

    builders: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
        "generic": lambda: ("webhook_configs", address("url")),
        "slack": lambda: (
            "slack_configs",
            {**address("api_url"), **({"channel": target.channel} if target.channel else {})},
        ),
        "msteams": lambda: ("msteams_configs", address("webhook_url")),
        "discord": lambda: ("discord_configs", address("webhook_url")),
        "telegram": lambda: ("telegram_configs", {"bot_token_file": token(), "chat_id": _chat_id(routed)}),
        "webex": lambda: (
            "webex_configs",
            {"room_id": chat(), "http_config": {"authorization": {"credentials_file": token()}}},
        ),
        "opsgenie": lambda: ("opsgenie_configs", {"api_key_file": token()}),
    }
    build = builders.get(target.type)
    if build is None:
        raise SpecError(
            f"{where}: notification {target.name!r}: Alertmanager has no receiver for Flux provider type "
            f"{target.type!r} (it has: {', '.join(RECEIVER_TYPES)}); set `alertmanager: false` on it "
            "to send it Flux events only"
        )
    key, config = build()
    return key, {**config, "send_resolved": True}


def _chat_id(routed: Routed) -> int:
    channel = routed.target.channel or ""
    try:
        return int(channel)
    except ValueError:
        raise SpecError(
            f"{routed.where}: notification {routed.target.name!r} (telegram) needs `channel` "
            "to be the numeric chat id"
        ) from None


def alertmanager_config(routed: Sequence[Routed]) -> AlertmanagerConfig:
    """Receivers and routes of ``routed`` (targets with ``alertmanager: false`` left out)."""
    config = AlertmanagerConfig()
    for item in routed:
        if not item.target.alertmanager:
            continue
        key, fields = receiver_fields(item)
        config.receivers.append({"name": item.receiver, key: [fields]})
        for matchers in ((KUBEVC_ALERTS,), OTHER_CRITICAL):
            config.routes.append(
                {"receiver": item.receiver, "matchers": [*matchers, *item.matchers], "continue": True}
            )
        secret = item.target.effective_alertmanager_secret
        if secret is not None:
            config.secrets.add(check_name(secret, "notification alertmanagerSecret name"))
    return config


def missing_secret_problem(item: Routed, have: Callable[[str], bool], how: str) -> str | None:
    """The one-line problem when ``item``'s Alertmanager Secret is not there (``how``: how to make it)."""
    secret = item.target.effective_alertmanager_secret
    if not item.target.alertmanager or secret is None or have(secret):
        return None
    key = "token" if item.target.type in ("telegram", "webex", "opsgenie") else "address"
    return (
        f"{item.where}: notification {item.target.name!r} needs Secret {secret!r} in namespace monitoring "
        f"for its Alertmanager receiver: {how.format(secret=secret, key=key)}"
    )


def region_routed(targets: Sequence[NotificationTarget], region: str) -> list[Routed]:
    """A region's own full stack: every target of the region, no extra matchers."""
    where = f"regions/{region}/region.yaml"
    return [Routed(t, t.name, where, region=region) for t in targets]


def hub_routed(
    fleet_targets: Sequence[NotificationTarget], region_targets: Mapping[str, Sequence[NotificationTarget]]
) -> list[Routed]:
    """The hub: fleet targets (minus the regions that replace them) and each region's own targets."""
    routed: list[Routed] = []
    for target in fleet_targets:
        replaced = sorted(r for r, own in region_targets.items() if any(t.name == target.name for t in own))
        matchers = (f'region!~"{"|".join(replaced)}"',) if replaced else ()
        routed.append(Routed(target, target.name, "kubevc-fleet.yaml", matchers))
    for region in sorted(region_targets):
        for target in region_targets[region]:
            routed.append(
                Routed(
                    target,
                    f"{region}-{target.name}",
                    f"regions/{region}/region.yaml",
                    (f'region="{region}"',),
                )
            )
    return routed


def check_region_alertmanager_secrets(regions: Sequence[RegionSpec], cfg: FleetConfig) -> None:
    """Without a hub, each region with monitoring mounts its receivers' Secrets: all must be listed."""
    problems: list[str] = []
    for region in sorted(regions, key=lambda r: r.name):
        if not region.monitoring:
            continue
        how = (
            f"`kubevc-gen secret set {region.name} {{secret}} --namespace monitoring "
            "--from-literal {key}=...`"
        )
        for item in region_routed(region_targets(region, cfg), region.name):
            problem = missing_secret_problem(item, region.secrets.__contains__, how)
            if problem:
                problems.append(problem)
    if problems:
        raise SpecError(problems)


def hub_alertmanager_values(
    cfg: FleetConfig, regions: Sequence[RegionSpec], hub_sops_files: Sequence[str]
) -> dict[str, Any]:
    """The hub's ``alertmanager`` values; its receivers' Secrets are SOPS files in its controllers folder."""
    own = {r.name: r.notifications for r in regions if r.notifications}
    routed = hub_routed(cfg.notifications, own)
    how = "commit it SOPS-encrypted (key {key}) as infrastructure/hub/controllers/{secret}.sops.yaml"
    problems = [
        p
        for p in (
            missing_secret_problem(i, lambda s: f"{s}.sops.yaml" in hub_sops_files, how) for i in routed
        )
        if p
    ]
    if problems:
        raise SpecError(problems)
    return alertmanager_config(routed).values()
