"""Alertmanager receivers and routes for the kubevc alert rules, from the notification targets.

The rendered ``alertmanager.config`` (merged over the chart's own, as Helm does) passes the real
``amtool check-config`` (Debian ``prometheus-alertmanager``); every key exists in the
kube-prometheus-stack values; secret parts are only ever file paths of a mounted Secret.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevc.generator.errors import SpecError
from kubevc.generator.render import KPS_CHART_VERSION, RenderInputs, render_tree
from kubevc.generator.spec import FleetConfig, HubSpec, RegionSpec, deep_merge

from .test_kps_values import SUBCHARTS, _missing

TARGETS: list[dict[str, Any]] = [
    {"name": "ops-slack", "type": "slack", "channel": "edge-alerts", "secret": "slack-hook"},
    {"name": "ops-hook", "type": "generic", "address": "http://relay.ops.svc:8080/alerts"},
    {"name": "ops-teams", "type": "msteams", "secret": "teams-hook"},
    {"name": "ops-discord", "type": "discord", "secret": "discord-hook"},
    {"name": "ops-telegram", "type": "telegram", "channel": "-1001234", "secret": "tg"},
    {"name": "ops-webex", "type": "webex", "channel": "room-1", "secret": "webex"},
    {"name": "ops-genie", "type": "opsgenie", "secret": "genie", "alertmanagerSecret": "genie-am"},
    {
        "name": "ops-matrix",
        "type": "matrix",
        "channel": "!room:example.org",
        "secret": "mx",
        "alertmanager": False,
    },
]
# The *_file fields each receiver type uses, and the Alertmanager release that added them.
NEEDS_0_26 = {"generic", "msteams", "discord", "telegram"}


def _region(name: str, **extra: Any) -> RegionSpec:
    return RegionSpec.model_validate(
        {
            "name": name,
            "apiEndpoint": f"https://10.8.{len(name)}.1:6443",
            "storage": {"nfs": {"server": "10.8.0.10", "path": "/m"}},
            "git": {"url": "https://git.example.com/f.git"},
            **extra,
        }
    )


def _secrets(targets: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for t in targets:
        if "secret" in t:
            names += [t["secret"], t.get("alertmanagerSecret", f"{t['secret']}-alertmanager")]
    return names


def _release_values(files: dict[str, bytes], folder: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(files[f"{folder}/kube-prometheus-stack.yaml"]) if d]
    values: dict[str, Any] = next(d for d in docs if d["kind"] == "HelmRelease")["spec"]["values"]
    return values


@pytest.fixture(scope="module")
def upstream_kps(shared_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    base = shared_dir / "upstream-values"
    main = yaml.safe_load((base / f"kube-prometheus-stack-{KPS_CHART_VERSION}" / "values.yaml").read_text())
    subs = {
        name: yaml.safe_load((base / folder / "values.yaml").read_text())
        for name, folder in SUBCHARTS.items()
    }
    return main, subs


def _amtool_version(amtool: str) -> tuple[int, int]:
    out = subprocess.run([amtool, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    assert found, out
    return int(found[1]), int(found[2])


def _check_config(amtool: str, config: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)


def test_region_receivers_routes_and_mounted_secrets(
    upstream_kps: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    region = _region("seoul", notifications=TARGETS, secrets=_secrets(TARGETS))
    files = render_tree(RenderInputs(FleetConfig(), (region,), {}, {}))
    values = _release_values(files, "infrastructure/regions/seoul")
    main, subs = upstream_kps
    assert _missing(values, main, "", subs) == []
    am = values["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == sorted(
        ["slack-hook-alertmanager", "teams-hook-alertmanager", "discord-hook-alertmanager",
         "tg-alertmanager", "webex-alertmanager", "genie-am"]
    )  # fmt: skip
    receivers = {r["name"]: r for r in am["config"]["receivers"]}
    assert set(receivers) == {"null"} | {t["name"] for t in TARGETS if t.get("alertmanager", True)}
    assert receivers["ops-slack"]["slack_configs"][0]["api_url_file"] == (
        "/etc/alertmanager/secrets/slack-hook-alertmanager/address"
    )
    assert receivers["ops-hook"]["webhook_configs"][0]["url"] == "http://relay.ops.svc:8080/alerts"
    assert receivers["ops-telegram"]["telegram_configs"][0]["chat_id"] == -1001234
    assert receivers["ops-genie"]["opsgenie_configs"][0]["api_key_file"].endswith("/genie-am/token")
    route = am["config"]["route"]
    assert route["receiver"] == "null"
    kubevc_routes = [r for r in route["routes"] if 'alertname=~"Kubevc.+"' in r.get("matchers", [])]
    assert {r["receiver"] for r in kubevc_routes} == set(receivers) - {"null"}
    assert all(r["continue"] for r in kubevc_routes)
    # the rules' alertnames are what the routes match
    rules = Path(__file__).parents[2] / "charts/kubevc-monitoring/templates/prometheusrule.yaml"
    names = set(re.findall(r"- alert: (\w+)", rules.read_text()))
    assert names and all(re.fullmatch("Kubevc.+", n) for n in names)
    # the shared stack (regions without targets of their own) is untouched
    assert "config" not in _release_values(files, "infrastructure/controllers")["alertmanager"]


def test_rendered_config_passes_amtool(
    upstream_kps: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not on PATH (Debian package prometheus-alertmanager: make system-deps)")
    version = _amtool_version(amtool)
    # Debian bookworm's amtool is 0.25: it predates the *_file fields of webhook, msteams,
    # discord and telegram (0.26; the chart runs 0.34), so those are checked only by a newer one.
    checked = [t for t in TARGETS if version >= (0, 26) or t["type"] not in NEEDS_0_26]
    region = _region("seoul", notifications=checked, secrets=_secrets(checked))
    files = render_tree(RenderInputs(FleetConfig(), (region,), {}, {}))
    ours = _release_values(files, "infrastructure/regions/seoul")["alertmanager"]["config"]
    effective = deep_merge(upstream_kps[0]["alertmanager"]["config"], ours)  # Helm merges maps
    done = _check_config(amtool, effective, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    # and amtool does refuse a broken one (the check is real)
    broken = deep_merge(effective, {"route": {"receiver": "nobody"}})
    assert _check_config(amtool, broken, tmp_path).returncode != 0


def test_no_secret_text_in_the_values() -> None:
    region = _region("seoul", notifications=TARGETS, secrets=_secrets(TARGETS))
    files = render_tree(RenderInputs(FleetConfig(), (region,), {}, {}))
    am = _release_values(files, "infrastructure/regions/seoul")["alertmanager"]["config"]
    for receiver in am["receivers"][1:]:
        for configs in (v for k, v in receiver.items() if k.endswith("_configs")):
            flat = yaml.safe_dump(configs)
            if receiver["name"] != "ops-hook":  # the one target with a non-secret address
                assert "://" not in flat, receiver


def test_a_type_without_a_receiver_is_one_clear_line() -> None:
    matrix = [{"name": "ops-matrix", "type": "matrix", "channel": "!r:example.org", "secret": "mx"}]
    region = _region("seoul", notifications=matrix, secrets=["mx", "mx-alertmanager"])
    with pytest.raises(SpecError) as err:
        render_tree(RenderInputs(FleetConfig(), (region,), {}, {}))
    message = str(err.value)
    assert "\n" not in message.strip()
    assert "Alertmanager has no receiver for Flux provider type 'matrix'" in message
    assert "alertmanager: false" in message


def test_a_missing_alertmanager_secret_names_the_command() -> None:
    slack = [TARGETS[0]]
    region = _region("seoul", notifications=slack, secrets=["slack-hook"])
    with pytest.raises(SpecError) as err:
        render_tree(RenderInputs(FleetConfig(), (region,), {}, {}))
    assert (
        "kubevc-gen secret set seoul slack-hook-alertmanager --namespace monitoring --from-literal address="
        in str(err.value)
    )


def test_fleet_targets_go_to_the_shared_stack() -> None:
    cfg = FleetConfig.model_validate({"notifications": [TARGETS[1]]})
    regions = (_region("busan"), _region("seoul"))
    files = render_tree(RenderInputs(cfg, regions, {}, {}))
    config = _release_values(files, "infrastructure/controllers")["alertmanager"]["config"]
    assert [r["name"] for r in config["receivers"]] == ["null", "ops-hook"]
    assert not any(rel.startswith("infrastructure/regions/") for rel in files)


def test_the_hub_routes_region_targets_by_region_label(
    upstream_kps: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    cfg = FleetConfig.model_validate({"notifications": [TARGETS[1]]})
    own = {"name": "ops-hook", "type": "slack", "secret": "seoul-slack"}
    regions = (_region("busan"), _region("seoul", notifications=[own], secrets=["seoul-slack"]))
    hub = HubSpec(api_endpoint="https://10.7.0.1:6443")
    folder = "infrastructure/hub/controllers"
    with pytest.raises(SpecError) as err:
        render_tree(RenderInputs(cfg, regions, {}, {}, hub=hub))
    assert f"as {folder}/seoul-slack-alertmanager.sops.yaml" in str(err.value)
    sops = {folder: ("seoul-slack-alertmanager.sops.yaml",)}
    files = render_tree(RenderInputs(cfg, regions, {}, {}, hub=hub, sops_files=sops))
    values = _release_values(files, folder)
    main, subs = upstream_kps
    assert _missing(values, main, "", subs) == []
    routes = values["alertmanager"]["config"]["route"]["routes"]
    by_receiver = {r["receiver"]: r["matchers"] for r in routes if 'alertname=~"Kubevc.+"' in r["matchers"]}
    assert by_receiver == {
        "ops-hook": ['alertname=~"Kubevc.+"', 'region!~"seoul"'],
        "seoul-ops-hook": ['alertname=~"Kubevc.+"', 'region="seoul"'],
    }
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == ["seoul-slack-alertmanager"]
    assert (
        "seoul-slack-alertmanager.sops.yaml"
        in yaml.safe_load(files[f"{folder}/kustomization.yaml"])["resources"]
    )
    # regions in agent mode run no Alertmanager: no own folder for seoul
    assert not any(rel.startswith("infrastructure/regions/seoul/") for rel in files)
