"""Values Helm must refuse, with a message that names the offending key."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.charts.rendering import CHART_NAMES, render

NFS = {"nfs": {"server": "nfs.example.internal", "path": "/exports/models"}}
# Smallest values each chart renders with; the model store needs its NFS export.
BASE: dict[str, dict[str, Any]] = {chart: {} for chart in CHART_NAMES} | {"kubevc-model-store": NFS}


def one_model(model_input: dict[str, Any]) -> dict[str, Any]:
    return {"config": {"models": [{"name": "m", "backend": "tfserving", "input": model_input}]}}


SCHEMA_REFUSALS = [
    # (chart, values on top of BASE, text the error must contain)
    ("kubevc-serving", {"replicas": 2}, "replicas"),
    ("kubevc-serving", {"image": {"tagg": "2.18.0"}}, "tagg"),
    ("kubevc-serving", {"models": [{"name": "m", "versionPolicy": "newest"}]}, "/models/0/versionPolicy"),
    ("kubevc-serving", {"models": [{"name": "m", "versionPolicy": "specific"}]}, "versions"),
    ("kubevc-serving", {"replicaCount": "two"}, "/replicaCount"),
    ("kubevc-serving", {"framework": "torchserve"}, "/framework"),
    ("kubevc-serving", {"architectures": ["riscv64"]}, "/architectures/0"),
    ("kubevc-serving", {"image": {"tag": "latest"}}, "/image/tag"),
    ("kubevc-serving", {"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
    ("kubevc-serving", {"resources": {"limits": {"memory": None}}}, "memory"),  # null deletes a default
    ("kubevc-model-store", {"storage": "nfs"}, "storage"),
    ("kubevc-model-store", {"nfs": {"server": "x", "path": "/p", "sever": "y"}}, "sever"),
    ("kubevc-model-store", {"type": "ceph"}, "/type"),
    ("kubevc-model-store", {"iscsi": {"lun": "one"}}, "/iscsi/lun"),
    ("kubevc-gateway", {"configuration": {}}, "configuration"),
    ("kubevc-gateway", {"config": {"server": {"port": "8080"}}}, "/config/server/port"),
    ("kubevc-gateway", {"config": {"limits": {"maxBodyByte": 1}}}, "maxBodyByte"),
    ("kubevc-gateway", one_model({"kind": "audio", "name": "x"}), "/config/models/0/input/kind"),
    ("kubevc-gateway", one_model({"kind": "image", "name": "x", "widht": 3}), "widht"),
    ("kubevc-gateway", {"config": {"backends": [{"name": "b", "protocol": "tfserving"}]}}, "address"),
    ("kubevc-monitoring", {"regions": "seoul"}, "regions"),
    ("kubevc-monitoring", {"rules": {"thresholds": {"nodeDown": "5m"}}}, "nodeDown"),
    ("kubevc-monitoring", {"rules": {"thresholds": {"gatewayErrorRatio": "high"}}}, "gatewayErrorRatio"),
    ("kubevc-monitoring", {"dashboards": {"enabled": "yes"}}, "/dashboards/enabled"),
]


@pytest.mark.parametrize(
    ("chart", "values", "names"), SCHEMA_REFUSALS, ids=[f"{c}:{n}" for c, _, n in SCHEMA_REFUSALS]
)
def test_schema_refuses_and_names_the_key(chart: str, values: dict[str, Any], names: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(chart, BASE[chart] | values)
    assert names in str(refused.value)


@pytest.mark.parametrize("missing", ["server", "path"])
def test_nfs_without_server_or_path_is_refused(missing: str) -> None:
    nfs = {key: value for key, value in NFS["nfs"].items() if key != missing}
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render("kubevc-model-store", {"nfs": nfs})
    assert f"/nfs/{missing}" in str(refused.value)


def test_nfs_with_empty_defaults_is_refused() -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render("kubevc-model-store", {})
    assert "/nfs/server" in str(refused.value)


def test_iscsi_without_target_is_refused() -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render("kubevc-model-store", {"type": "iscsi", "iscsi": {"iqn": "iqn.2026-01.internal.example:m"}})
    assert "/iscsi/targetPortal" in str(refused.value)


TEMPLATE_REFUSALS = [
    # Rules the schema cannot express, enforced by `fail` in the templates.
    ("kubevc-serving", {"models": [{"name": "m"}, {"name": "m"}]}, 'model name "m" is listed twice'),
    (
        "kubevc-serving",
        {
            "models": [
                {"name": "m", "versionPolicy": "specific", "versions": [1], "versionLabels": {"canary": 2}}
            ]
        },
        "models[m].versionLabels.canary",
    ),
    (
        "kubevc-gateway",
        {"config": {"models": [{"name": "m", "backend": "nope", "input": {"kind": "image", "name": "x"}}]}},
        "config.models[m].backend",
    ),
    (
        "kubevc-model-store",
        {"publisher": {"enabled": False, "job": {"enabled": True}}},
        "publisher.job.enabled",
    ),
]


@pytest.mark.parametrize(
    ("chart", "values", "names"), TEMPLATE_REFUSALS, ids=[f"{c}:{n}" for c, _, n in TEMPLATE_REFUSALS]
)
def test_templates_refuse_and_name_the_key(chart: str, values: dict[str, Any], names: str) -> None:
    with pytest.raises(helm_python.HelmError) as refused:
        render(chart, BASE[chart] | values)
    assert names in str(refused.value)


def test_publisher_claim_is_refused_on_iscsi() -> None:
    iscsi = {
        "type": "iscsi",
        "iscsi": {"targetPortal": "10.0.0.6:3260", "iqn": "iqn.2026-01.internal.example:m"},
    }
    with pytest.raises(helm_python.HelmValuesError) as refused:
        render("kubevc-model-store", iscsi | {"publisher": {"enabled": True}})
    assert "/publisher/enabled" in str(refused.value)


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_base_values_render(chart: str) -> None:
    # The refusals above are only meaningful if the same base values render fine.
    assert render(chart, BASE[chart])
