"""Notification targets: a Flux Provider + Alert per region, strictly valid against the upstream CRDs.

The secret part of a target (its webhook address) is a region Secret made with ``secret set
--namespace flux-system`` and the real sops; the Provider only names it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubevc.generator.validate import kubectl_path

from .conftest import git, run_gen, snapshot
from .test_flux_crds import _errors, crd_validators  # noqa: F401  (fixture)
from .test_secrets import PLAIN, age_key, assert_no_plaintext, sfleet  # noqa: F401  (fixtures)

SLACK = "notifications=[{name: ops-slack, type: slack, channel: edge-alerts, secret: slack-hook}]"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def test_region_target_renders_provider_and_alert(sfleet: Path, crd_validators: Any) -> None:  # noqa: F811
    hook = f"https://hooks.slack.example.com/services/{PLAIN}"
    made = run_gen(
        "secret", "set", "seoul", "slack-hook", "--namespace", "flux-system",
        "--from-literal", f"address={hook}", fleet=sfleet,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    # the same address for the region's Alertmanager (a Secret in monitoring: test_alertmanager.py)
    made_am = run_gen(
        "secret", "set", "seoul", "slack-hook-alertmanager", "--namespace", "monitoring",
        "--from-literal", f"address={hook}", fleet=sfleet,
    )  # fmt: skip
    assert made_am.exit_code == 0, made_am.output
    result = run_gen("region", "set", "seoul", SLACK, fleet=sfleet)
    assert result.exit_code == 0, result.output
    docs = _docs(sfleet / "apps/seoul/notifications.yaml")
    assert [(d["kind"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in docs] == [
        ("Provider", "ops-slack", "flux-system"),
        ("Alert", "ops-slack", "flux-system"),
    ]
    provider, alert = docs
    assert provider["spec"] == {
        "type": "slack",
        "channel": "edge-alerts",
        "secretRef": {"name": "slack-hook"},
    }
    assert alert["spec"]["eventSeverity"] == "error"
    assert {(s["kind"], s["namespace"]) for s in alert["spec"]["eventSources"]} == {
        ("Kustomization", "flux-system"),
        ("HelmRelease", "kubevc"),
        ("HelmRelease", "monitoring"),
    }
    for doc in docs:
        assert _errors(crd_validators, doc) == [], doc
    kust = yaml.safe_load((sfleet / "apps/seoul/kustomization.yaml").read_text())
    assert kust["resources"][-3:] == [
        "secrets/slack-hook.sops.yaml",
        "secrets/slack-hook-alertmanager.sops.yaml",
        "notifications.yaml",
    ]
    release = _docs(sfleet / "infrastructure/regions/seoul/kube-prometheus-stack.yaml")[-1]
    am = release["spec"]["values"]["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == ["slack-hook-alertmanager"]
    assert am["config"]["receivers"][1] == {
        "name": "ops-slack",
        "slack_configs": [
            {
                "api_url_file": "/etc/alertmanager/secrets/slack-hook-alertmanager/address",
                "channel": "edge-alerts",
                "send_resolved": True,
            }
        ],
    }
    built = subprocess.run(
        [kubectl_path(), "kustomize", str(sfleet / "apps/seoul")], capture_output=True, text=True, check=True
    ).stdout
    assert "kind: Provider" in built and "kind: Alert" in built
    assert not (sfleet / "apps/busan/notifications.yaml").exists()
    assert run_gen("render", "--check", fleet=sfleet).exit_code == 0
    valid = run_gen("validate", "--no-checkov", "--region", "seoul", fleet=sfleet)
    assert valid.exit_code == 0, valid.output
    assert_no_plaintext(sfleet, made.output, made_am.output, result.output, valid.output)


def test_fleet_targets_reach_every_region(sfleet: Path, crd_validators: Any) -> None:  # noqa: F811
    config = sfleet / "kubevc-fleet.yaml"
    config.write_text(
        config.read_text()
        + "notifications:\n  - name: ops-webhook\n    type: generic\n    address: http://relay.ops.svc:8080/flux\n"
    )
    git(sfleet, "commit", "-q", "-am", "fleet notification target")
    result = run_gen("render", fleet=sfleet)
    assert result.exit_code == 0, result.output
    for region in ("busan", "seoul"):
        docs = _docs(sfleet / f"apps/{region}/notifications.yaml")
        assert [d["kind"] for d in docs] == ["Provider", "Alert"]
        assert docs[0]["spec"] == {"type": "generic", "address": "http://relay.ops.svc:8080/flux"}
        assert docs[1]["spec"]["eventMetadata"] == {"region": region}
        for doc in docs:
            assert _errors(crd_validators, doc) == [], doc


def test_a_target_without_its_secret_is_refused(sfleet: Path) -> None:  # noqa: F811
    before = snapshot(sfleet)
    result = run_gen("region", "set", "seoul", SLACK, fleet=sfleet)
    assert result.exit_code == 5, result.output
    assert "kubevc-gen secret set seoul slack-hook --namespace flux-system" in result.output
    assert snapshot(sfleet) == before
    bad = run_gen("region", "set", "seoul", "notifications=[{name: x, type: carrier-pigeon}]", fleet=sfleet)
    assert bad.exit_code == 5 and snapshot(sfleet) == before
