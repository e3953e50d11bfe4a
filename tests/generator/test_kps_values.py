"""Every key kubevc sets for kube-prometheus-stack exists in that chart's own values (88.5.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevc.generator.render import KPS_CHART_VERSION, KPS_VALUES

SUBCHARTS = {
    "grafana": "grafana-12.11.1",
    "kube-state-metrics": "kube-state-metrics-8.4.0",
    "prometheus-node-exporter": "prometheus-node-exporter-4.56.1",
}


def _missing(ours: Any, theirs: Any, path: str, sub: dict[str, Any]) -> list[str]:
    """Keys in ``ours`` absent from ``theirs``; below an empty map upstream, anything goes."""
    if not isinstance(ours, dict):
        return []
    if theirs == {} or theirs is None:
        return []  # a free-form map upstream (resources: {}, nodeSelector: {} ...)
    missing = []
    for key, value in ours.items():
        options = []
        if isinstance(theirs, dict) and key in theirs:
            options.append(theirs[key])
        if path == "" and key in sub:
            options.append(sub[key])
        if not options:
            missing.append(f"{path}{key}")
            continue
        if len(options) == 2 and all(isinstance(o, dict) and o for o in options):
            # a subchart's section: the parent's keys (enabled ...) and the subchart's own both count
            options = [_union(options[0], options[1])]
        results = [_missing(value, opt, f"{path}{key}.", {}) for opt in options]
        missing.extend(min(results, key=len))
    return missing


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key] and value:
            out[key] = _union(out[key], value)
        elif key not in out or (isinstance(out[key], dict) and not out[key]):
            out[key] = value
    return out


@pytest.fixture(scope="module")
def upstream(shared_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    base = shared_dir / "upstream-values"
    main = yaml.safe_load((base / f"kube-prometheus-stack-{KPS_CHART_VERSION}" / "values.yaml").read_text())
    subs = {
        name: yaml.safe_load((base / folder / "values.yaml").read_text())
        for name, folder in SUBCHARTS.items()
    }
    return main, subs


def test_every_key_exists_upstream(upstream: tuple[dict[str, Any], dict[str, Any]]) -> None:
    main, subs = upstream
    assert _missing(KPS_VALUES, main, "", subs) == []


def test_checker_finds_a_made_up_key(upstream: tuple[dict[str, Any], dict[str, Any]]) -> None:
    main, subs = upstream
    bad = {"prometheus": {"prometheusSpec": {"retentionn": "7d"}}, "grafana": {"sidecar": {"dashbords": {}}}}
    assert sorted(_missing(bad, main, "", subs)) == [
        "grafana.sidecar.dashbords",
        "prometheus.prometheusSpec.retentionn",
    ]


def test_the_fleet_pins_the_same_version_and_values(repo_root: Path) -> None:
    docs = list(
        yaml.safe_load_all(
            (repo_root / "fleet/infrastructure/controllers/kube-prometheus-stack.yaml").read_text()
        )
    )
    release = next(d for d in docs if d and d["kind"] == "HelmRelease")
    assert release["spec"]["chart"]["spec"]["version"] == KPS_CHART_VERSION == "88.5.3"
    assert release["spec"]["values"] == KPS_VALUES


def test_hub_and_agent_mode_keys_exist_upstream(upstream: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The central-monitoring values (kubevc.generator.render): the hub's full stack and a region's agent."""
    from kubevc.generator.render import hub_kps_values, region_kps_values
    from kubevc.generator.spec import HubSpec, RegionSpec

    main, subs = upstream
    region = RegionSpec.model_validate(
        {
            "name": "seoul",
            "apiEndpoint": "https://10.8.0.1:6443",
            "storage": {"nfs": {"server": "10.8.0.10", "path": "/m"}},
            "git": {"url": "https://git.example.com/f.git"},
        }
    )
    for hub in (
        HubSpec(api_endpoint="https://10.7.0.1:6443"),
        HubSpec(
            api_endpoint="https://10.7.0.1:6443",
            remote_write_url="https://m.example.com/api/v1/write",
            ingress_class_name="traefik",
        ),
    ):
        assert _missing(hub_kps_values(hub), main, "", subs) == []
        assert _missing(region_kps_values(region, hub), main, "", subs) == []
    # the settings that make the two modes exist where we put them
    assert main["prometheus"]["agentMode"] is False
    assert main["prometheus"]["prometheusSpec"]["enableRemoteWriteReceiver"] is False
    assert main["prometheus"]["prometheusSpec"]["remoteWrite"] == []
    assert main["prometheus"]["prometheusSpec"]["externalLabels"] == {}
