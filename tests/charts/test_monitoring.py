"""kubevc-monitoring: dashboards (valid JSON, region variable, known metrics) and alert rules (promtool)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.rendering import CHARTS_DIR, CiCase, Manifest, case_manifests, ci_cases

CHART_DIR = CHARTS_DIR / "kubevc-monitoring"
MONITORING_CASES = [case for case in ci_cases() if case.chart == "kubevc-monitoring"]
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
# The gateway's metric contract (see gateway/_metrics.py); histograms add _bucket/_sum/_count.
GATEWAY_METRICS = {
    "kubevc_gateway_requests_total",
    "kubevc_gateway_request_duration_seconds",
    "kubevc_gateway_request_bytes_total",
    "kubevc_gateway_response_bytes_total",
    "kubevc_gateway_backend_up",
    "kubevc_gateway_model_available",
}
EXPECTED_DASHBOARDS = {"nodes", "serving", "gateway", "fleet", "region", "model"}


def dashboards(case: CiCase) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for obj in case_manifests(case):
        if obj["kind"] == "ConfigMap":
            ((key, text),) = obj["data"].items()
            found[key] = json.loads(text)
    return found


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_files_are_valid_json_with_a_region_variable() -> None:
    files = sorted((CHART_DIR / "dashboards").glob("*.json"))
    assert {path.stem for path in files} == EXPECTED_DASHBOARDS
    for path in files:
        dashboard = json.loads(path.read_text())
        names = [variable["name"] for variable in dashboard["templating"]["list"]]
        assert "region" in names, path.name
        assert dashboard["uid"] and dashboard["panels"], path.name


@pytest.mark.parametrize("case", MONITORING_CASES, ids=lambda case: case.id)
def test_rendered_dashboards_default_to_the_region(case: CiCase) -> None:
    values = case.values()
    if not values.get("dashboards", {}).get("enabled", True):
        assert not dashboards(case)
        return
    rendered = dashboards(case)
    assert {key.removeprefix("kubevc-").removesuffix(".json") for key in rendered} == EXPECTED_DASHBOARDS
    region = values.get("region", "")
    for key, dashboard in rendered.items():
        variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "region")
        assert variable["current"]["value"] == (region or "$__all"), key
        assert "__KUBEVC_REGION" not in json.dumps(dashboard)
        # Every query filters on the region variable, so one Grafana can show several regions.
        assert all('region=~"$region"' in expr for expr in exprs(dashboard)), key


@pytest.mark.parametrize("case", MONITORING_CASES, ids=lambda case: case.id)
def test_dashboard_config_maps_carry_the_sidecar_labels(case: CiCase) -> None:
    labels = case.values().get("dashboards", {}).get("labels", DEFAULTS["dashboards"]["labels"])
    for obj in case_manifests(case):
        if obj["kind"] == "ConfigMap":
            assert labels.items() <= obj["metadata"]["labels"].items()


def test_dashboards_use_only_the_gateway_metric_contract() -> None:
    text = " ".join(
        expr
        for path in (CHART_DIR / "dashboards").glob("*.json")
        for expr in exprs(json.loads(path.read_text()))
    )
    used = {re.sub(r"_(bucket|sum|count)$", "", name) for name in re.findall(r"kubevc_gateway_\w+", text)}
    assert used == GATEWAY_METRICS


def test_dashboards_cover_nodes_serving_and_gateway_views() -> None:
    expected = {
        "nodes": ["node_cpu_seconds_total", "node_memory_MemAvailable_bytes"],
        "serving": [
            ":tensorflow:serving:request_count",
            ":tensorflow:serving:request_latency",
            "load_attempt_count",
        ],
        "gateway": ["0.5", "0.95", "0.99", "request_bytes_total", "response_bytes_total", 'code=~"5..'],
    }
    for name, needles in expected.items():
        text = " ".join(exprs(json.loads((CHART_DIR / "dashboards" / f"{name}.json").read_text())))
        assert all(needle in text for needle in needles), name


def prometheus_rule(case: CiCase) -> Manifest:
    (rule,) = [obj for obj in case_manifests(case) if obj["kind"] == "PrometheusRule"]
    return rule


def without_annotations(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # promtool's unit tests compare annotations too; their templates are checked by `check rules`.
    return [
        {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
        for g in groups
    ]


LABELS = 'namespace="kubevc", model="yolov5"'
REQUESTS = 'kubevc_gateway_requests_total{%s, route="infer", code="%s"}'
BUCKET = 'kubevc_gateway_request_duration_seconds_bucket{%s, stage="total", le="%s"}'
CRASH_LOOP = (
    "kube_pod_container_status_waiting_reason"
    '{namespace="kubevc", pod="p", container="c", reason="CrashLoopBackOff"}'
)
NODE_READY = 'kube_node_status_condition{node="pi-1", condition="Ready", status="true"}'
BACKEND_UP = 'kubevc_gateway_backend_up{namespace="kubevc", backend="tfserving"}'
# Series that trip every alert (errors 10 %, p95 about 5 s, nothing available, node NotReady).
BAD_SERIES = [
    (REQUESTS % (LABELS, "200"), "0+90x40"),
    (REQUESTS % (LABELS, "503"), "0+10x40"),
    (BUCKET % (LABELS, "2.5"), "0x40"),
    (BUCKET % (LABELS, "5"), "0+100x40"),
    (BUCKET % (LABELS, "+Inf"), "0+100x40"),
    (f"kubevc_gateway_model_available{{{LABELS}}}", "0x40"),
    (BACKEND_UP, "0x40"),
    (NODE_READY, "0x40"),
    (CRASH_LOOP, "1x40"),
]
# Healthy: 0.5 % errors, every request under 0.1 s, model and backend up, node Ready.
GOOD_SERIES = [
    (REQUESTS % (LABELS, "200"), "0+995x40"),
    (REQUESTS % (LABELS, "500"), "0+5x40"),
    (BUCKET % (LABELS, "0.1"), "0+1000x40"),
    (BUCKET % (LABELS, "+Inf"), "0+1000x40"),
    (f"kubevc_gateway_model_available{{{LABELS}}}", "1x40"),
    (BACKEND_UP, "1x40"),
    (NODE_READY, "1x40"),
]
ALERT_LABELS = {
    "KubevcNodeDown": {"severity": "critical", "node": "pi-1", "condition": "Ready", "status": "true"},
    "KubevcPodCrashLooping": {"severity": "warning", "namespace": "kubevc", "pod": "p", "container": "c"},
    "KubevcModelNotAvailable": {"severity": "critical", "namespace": "kubevc", "model": "yolov5"},
    "KubevcBackendDown": {"severity": "critical", "namespace": "kubevc", "backend": "tfserving"},
    "KubevcGatewayErrorRatioHigh": {"severity": "warning", "namespace": "kubevc", "model": "yolov5"},
    "KubevcGatewayLatencyHigh": {"severity": "warning", "namespace": "kubevc", "model": "yolov5"},
}


def promtool(promtool_bin: Path, *args: str) -> None:
    proc = subprocess.run([str(promtool_bin), *args], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize(
    "case",
    [c for c in MONITORING_CASES if c.values().get("rules", {}).get("enabled", True)],
    ids=lambda c: c.id,
)
def test_rules_load_and_fire_only_when_they_should(case: CiCase, promtool_bin: Path, tmp_path: Path) -> None:
    values = case.values()
    groups = prometheus_rule(case)["spec"]["groups"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    promtool(promtool_bin, "check", "rules", str(rules_file))

    (tmp_path / "bare-rules.yaml").write_text(yaml.safe_dump({"groups": without_annotations(groups)}))
    extra = dict(values.get("rules", {}).get("alertLabels", {}))
    if values.get("region"):
        extra["region"] = values["region"]
    # Past every `for:` of every ci case (the longest is 15m) plus the rate window.
    at = "35m"

    def alert_tests(firing: bool) -> list[dict[str, Any]]:
        return [
            {
                "eval_time": at,
                "alertname": name,
                "exp_alerts": [{"exp_labels": labels | extra}] if firing else [],
            }
            for name, labels in ALERT_LABELS.items()
        ]

    tests = [
        {
            "interval": "1m",
            "input_series": [{"series": name, "values": samples} for name, samples in series],
            "alert_rule_test": alert_tests(firing),
        }
        for series, firing in ((BAD_SERIES, True), (GOOD_SERIES, False))
    ]
    test_file = tmp_path / "rules-test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": ["bare-rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    promtool(promtool_bin, "test", "rules", str(test_file))


def test_thresholds_come_from_values() -> None:
    case = next(c for c in MONITORING_CASES if c.values_file.stem == "region-values")
    thresholds = case.values()["rules"]["thresholds"]
    rules = {r["alert"]: r for g in prometheus_rule(case)["spec"]["groups"] for r in g["rules"]}
    assert (
        rules["KubevcGatewayErrorRatioHigh"]["expr"].rstrip().endswith(f"> {thresholds['gatewayErrorRatio']}")
    )
    assert (
        rules["KubevcGatewayLatencyHigh"]["expr"]
        .rstrip()
        .endswith(f"> {thresholds['gatewayLatencyP95Seconds']}")
    )
    assert f"[{thresholds['rateWindow']}]" in rules["KubevcGatewayLatencyHigh"]["expr"]
    assert rules["KubevcNodeDown"]["for"] == thresholds["nodeDownFor"]
    assert rules["KubevcModelNotAvailable"]["for"] == thresholds["modelUnavailableFor"]
    assert 'namespace=~"kubevc|kubevc-.*"' in rules["KubevcPodCrashLooping"]["expr"]


# --------------------------------------------------------------------------- the hub's view

# Every metric a dashboard or rule may name, by who exposes it. Anything else is a typo or a
# metric nobody in the stack exposes (the panel would stay empty).
KNOWN_METRICS = {
    "prometheus": {"up"},
    "gateway": {*GATEWAY_METRICS, "kubevc_gateway_request_duration_seconds_bucket"},
    "node-exporter": {
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_hwmon_temp_celsius",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "node_uname_info",
    },
    "kube-state-metrics": {
        "kube_node_status_condition",
        "kube_node_info",
        "kube_pod_status_ready",
        "kube_pod_container_status_waiting_reason",
    },
    "tensorflow-serving": {
        ":tensorflow:serving:request_count",
        ":tensorflow:serving:request_latency_bucket",
        ":tensorflow:serving:runtime_latency_bucket",
        ":tensorflow:cc:saved_model:load_attempt_count",
    },
}
# Grafana's macros are not PromQL; the panel's query is what Grafana sends after replacing them.
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m"}
HUB_CASE = next(c for c in MONITORING_CASES if c.values_file.stem == "hub-values")


def as_promql(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric names of every selector in ``expr``, from the parser's syntax tree."""
    import promql_parser

    found: set[str] = set()

    def walk(node: Any) -> None:
        if node is None:
            return
        if isinstance(node, promql_parser.VectorSelector):
            found.add(node.name or "")
            return
        if isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
            return
        if isinstance(node, promql_parser.Call):
            for arg in node.args:
                walk(arg)
            return
        if isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
            return
        for attr in ("expr", "param"):
            walk(getattr(node, attr, None))

    walk(promql_parser.parse(as_promql(expr)))
    return found


def all_dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (f"{path.name}: {panel['title']}", target["expr"])
        for path in sorted((CHART_DIR / "dashboards").glob("*.json"))
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]


def all_rule_exprs() -> list[tuple[str, str]]:
    return [
        (f"{case.id}: {rule['alert']}", rule["expr"])
        for case in MONITORING_CASES
        if case.values().get("rules", {}).get("enabled", True)
        for group in prometheus_rule(case)["spec"]["groups"]
        for rule in group["rules"]
    ]


def test_every_panel_and_rule_is_valid_promql() -> None:
    import promql_parser

    queries = all_dashboard_exprs() + all_rule_exprs()
    assert len(queries) > 80
    for where, expr in queries:
        try:
            promql_parser.parse(as_promql(expr))
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}\n{expr}")


@pytest.mark.parametrize(
    "typo",
    [
        'sum(rate(kubevc_gateway_requests_total{region=~"$region"}[$__rate_interval])',
        'sum by (region (up{region=~"$region"})',
        'histogram_quantile(0.95, sum by (le) (rate(x_bucket{region=~"$region"}[5x])))',
        'up{region=~"$region"} >',
    ],
)
def test_the_promql_check_catches_typos(typo: str) -> None:
    import promql_parser

    with pytest.raises(ValueError):
        promql_parser.parse(as_promql(typo))


def test_panels_and_rules_name_only_metrics_someone_exposes() -> None:
    known = set().union(*KNOWN_METRICS.values())
    for where, expr in all_dashboard_exprs() + all_rule_exprs():
        names = metric_names(expr)
        assert names, f"{where}: no metric selector in {expr}"
        assert names <= known, f"{where}: unknown metric(s) {sorted(names - known)}"


def test_fleet_overview_has_every_per_region_column() -> None:
    fleet = json.loads((CHART_DIR / "dashboards" / "fleet.json").read_text())
    (table,) = [p for p in fleet["panels"] if p["type"] == "table"]
    text = " ".join(t["expr"] for t in table["targets"])
    for needle in (
        'kube_node_status_condition{condition="Ready", status="true"',
        'kube_pod_status_ready{condition="false"',
        "kubevc_gateway_model_available",
        "rate(kubevc_gateway_requests_total",
        "histogram_quantile(0.95",
        'code=~"5.."',
        "kubevc_gateway_request_bytes_total",
        "kubevc_gateway_response_bytes_total",
    ):
        assert needle in text, needle
    assert all(
        t["expr"].startswith(
            ("sum by (region)", "count by (region)", "histogram_quantile(0.95, sum by (region,")
        )
        for t in table["targets"]
    )
    panels = " ".join(t["expr"] for p in fleet["panels"] for t in p.get("targets", []))
    assert "node_cpu_seconds_total" in panels and "node_memory_MemAvailable_bytes" in panels
    model = json.loads((CHART_DIR / "dashboards" / "model.json").read_text())
    assert [v["name"] for v in model["templating"]["list"]] == ["datasource", "region", "model"]


def hub_groups() -> list[dict[str, Any]]:
    return without_annotations(prometheus_rule(HUB_CASE)["spec"]["groups"])


def run_rule_tests(
    promtool_bin: Path, tmp_path: Path, groups: list[dict[str, Any]], tests: list[Any]
) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    promtool(promtool_bin, "check", "rules", str(tmp_path / "rules.yaml"))
    test_file = tmp_path / "rules-test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    promtool(promtool_bin, "test", "rules", str(test_file))


def test_region_silent_fires_for_silent_and_never_seen_regions_only(
    promtool_bin: Path, tmp_path: Path
) -> None:
    # hub-values lists busan and seoul. busan reports all along; seoul never reports;
    # daegu (not listed) reports for 10 minutes and then falls silent; jeju (not listed) keeps reporting.
    series = [
        {"series": 'up{job="node-exporter", instance="b:9100", region="busan"}', "values": "1x40"},
        {"series": 'up{job="node-exporter", instance="d:9100", region="daegu"}', "values": "1x10"},
        {"series": 'up{job="node-exporter", instance="j:9100", region="jeju"}', "values": "1x40"},
    ]
    silent = {"severity": "critical"}
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                # at 8m daegu is still reporting: only the never-seen seoul alerts
                {"eval_time": "8m", "alertname": "KubevcRegionSilent",
                 "exp_alerts": [{"exp_labels": silent | {"region": "seoul"}}]},
                # 5m after daegu's last sample both alert; busan and jeju never do
                {"eval_time": "20m", "alertname": "KubevcRegionSilent",
                 "exp_alerts": [{"exp_labels": silent | {"region": "daegu"}},
                                {"exp_labels": silent | {"region": "seoul"}}]},
            ],
        }
    ]  # fmt: skip
    run_rule_tests(promtool_bin, tmp_path, hub_groups(), tests)


def test_hub_alerts_carry_the_region_of_the_series(promtool_bin: Path, tmp_path: Path) -> None:
    # The same bad/good series as the per-region tests, but remote-written by two regions:
    # seoul is bad, busan is good. Every alert names seoul and none names busan.
    def relabel(series: list[tuple[str, str]], region: str) -> list[dict[str, str]]:
        return [{"series": name.replace("{", f'{{region="{region}", ', 1), "values": v} for name, v in series]

    up = [('up{job="node-exporter"}', "1x40")]
    tests = [
        {
            "interval": "1m",
            "input_series": relabel(BAD_SERIES + up, "seoul") + relabel(GOOD_SERIES + up, "busan"),
            "alert_rule_test": [
                {
                    "eval_time": "35m",
                    "alertname": name,
                    "exp_alerts": [{"exp_labels": labels | {"region": "seoul"}}],
                }
                for name, labels in ALERT_LABELS.items()
            ]
            + [{"eval_time": "35m", "alertname": "KubevcRegionSilent", "exp_alerts": []}],
        }
    ]
    run_rule_tests(promtool_bin, tmp_path, hub_groups(), tests)


def test_hub_thresholds_are_values(promtool_bin: Path, tmp_path: Path) -> None:
    from tests.charts.rendering import manifests, render

    values = HUB_CASE.values() | {
        "rules": {"thresholds": {"regionSilentFor": "2m", "gatewayErrorRatio": 0.5}}
    }
    (rule,) = [o for o in manifests(render("kubevc-monitoring", values)) if o["kind"] == "PrometheusRule"]
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    silent = [r["expr"] for r in rules if r["alert"] == "KubevcRegionSilent"]
    assert all("[2m]" in e for e in silent) and len(silent) == 3
    (ratio,) = [r for r in rules if r["alert"] == "KubevcGatewayErrorRatioHigh"]
    assert ratio["expr"].rstrip().endswith("> 0.5")
