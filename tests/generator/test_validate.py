"""validate: real Helm SDK rendering, kubectl kustomize, kubernetes-validate and Flux checks.

checkov runs in tests/e2e (it is slow to start); here ``--no-checkov``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import Gen, git, snapshot


def _add_resource(fleet: Path, region: str, name: str, text: str) -> None:
    (fleet / f"apps/{region}/{name}").write_text(text)
    kust_path = fleet / f"apps/{region}/kustomization.yaml"
    kust = yaml.safe_load(kust_path.read_text())
    kust["resources"].append(name)
    kust_path.write_text(yaml.safe_dump(kust, sort_keys=False))


def test_clean_fleet_validates(gen: Gen, fleet: Path) -> None:
    before = snapshot(fleet)
    result = gen("validate", "--no-checkov")
    assert result.exit_code == 0, result.output
    assert "no findings" in result.output
    for region in ("seoul", "busan"):
        assert region in result.output
    assert "helm render charts/kubevc-serving" not in result.output  # no progress lines unless a terminal
    assert snapshot(fleet) == before  # validate writes nothing


def test_findings_name_region_file_and_object(gen: Gen, fleet: Path) -> None:
    # 1. a plain-text Secret (a SOPS-encrypted one is fine)
    (fleet / "apps/seoul/db.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: kubevc\n"
        "stringData:\n  password: hunter2\n"
    )
    (fleet / "apps/seoul/ok.sops.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: ok\ndata:\n  k: ENC[AES256_GCM,data:xx]\n"
        "sops:\n  version: 3.9.0\n"
    )
    # 2. a value the chart's schema refuses, through the region's values ConfigMap
    cm_path = fleet / "apps/busan/kubevc-serving-values.yaml"
    cm = yaml.safe_load(cm_path.read_text())
    values = yaml.safe_load(cm["data"]["values.yaml"])
    values["replicaCount"] = "many"
    cm["data"]["values.yaml"] = yaml.safe_dump(values)
    cm_path.write_text(yaml.safe_dump(cm))
    # 3. a typo in a HelmRelease and a dependsOn that points nowhere
    hr_path = fleet / "apps/base/kubevc-gateway/helmrelease.yaml"
    hr = yaml.safe_load(hr_path.read_text())
    hr["spec"]["dependsOn"] = [{"name": "kubevc-servng"}]
    hr_path.write_text(yaml.safe_dump(hr))
    hr_path = fleet / "apps/base/kubevc-monitoring/helmrelease.yaml"
    hr = yaml.safe_load(hr_path.read_text())
    hr["spec"]["upgrade"]["cleanupOnFial"] = True
    hr_path.write_text(yaml.safe_dump(hr))
    # 4. a core object with an unknown field
    _add_resource(
        fleet,
        "seoul",
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: kubevc\ndta:\n  a: b\n",
    )
    result = gen("validate", "--no-checkov")
    out = result.output
    assert result.exit_code == 1, out
    assert "seoul: secrets: apps/seoul/db.yaml: Secret/kubevc/db: plain-text Secret" in out
    assert "ok.sops.yaml" not in out
    assert "busan: helm: apps/base/kubevc-serving/helmrelease.yaml: HelmRelease/kubevc/kubevc-serving:" in out
    assert "replicaCount" in out
    assert (
        "apps/base/kubevc-gateway/helmrelease.yaml: HelmRelease/kubevc/kubevc-gateway: "
        "dependsOn HelmRelease 'kubevc-servng'" in out
    )
    assert (
        "HelmRelease/kubevc/kubevc-monitoring: HelmRelease: spec.upgrade.cleanupOnFial: unknown field" in out
    )
    assert "seoul: schema: apps/seoul/cm.yaml: ConfigMap/kubevc/extra: " in out and "dta" in out
    assert "finding(s)" in out


def test_kustomize_and_flux_structure_findings(gen: Gen, fleet: Path) -> None:
    kust_path = fleet / "apps/busan/kustomization.yaml"
    kust = yaml.safe_load(kust_path.read_text())
    kust["resources"].append("missing.yaml")
    kust_path.write_text(yaml.safe_dump(kust))
    infra = fleet / "clusters/seoul/infrastructure.yaml"
    infra.write_text(
        infra.read_text().replace("name: infra-controllers\n  namespace", "name: infra-ctrl\n  namespace")
    )
    apps = fleet / "clusters/seoul/apps.yaml"
    apps.write_text(
        apps.read_text()
        .replace("kustomize.toolkit.fluxcd.io/v1", "kustomize.toolkit.fluxcd.io/v1beta2")
        .replace("  timeout: 15m0s\n", "")
    )
    result = gen("validate", "--no-checkov")
    out = result.output
    assert result.exit_code == 1, out
    assert "busan: kustomize: apps/busan: kustomization.yaml:" in out and "missing.yaml" in out
    assert (
        "seoul: flux: clusters/seoul/infrastructure.yaml: Kustomization/flux-system/infra-configs: "
        "dependsOn 'infra-controllers' does not exist" in out
    )
    assert "current version is kustomize.toolkit.fluxcd.io/v1" in out


def test_missing_chart_and_values_configmap(gen: Gen, fleet: Path) -> None:
    import shutil

    shutil.rmtree(fleet / "charts/kubevc-monitoring")
    (fleet / "apps/seoul/kubevc-gateway-values.yaml").write_text(
        (fleet / "apps/seoul/kubevc-gateway-values.yaml")
        .read_text()
        .replace("name: kubevc-gateway-values", "name: gw-values")
    )
    result = gen("validate", "--no-checkov", "--region", "seoul")
    out = result.output
    assert result.exit_code == 1
    assert "chart path './charts/kubevc-monitoring' has no Chart.yaml" in out
    assert "valuesFrom ConfigMap 'kubevc-gateway-values' not found in apps/seoul" in out
    assert "busan" not in out.split("kubevc-gen validate")[-1]  # only the requested region


def test_validate_reports_an_invalid_region_file(gen: Gen, fleet: Path) -> None:
    path = fleet / "regions/seoul/region.yaml"
    path.write_text(path.read_text() + "colour: blue\n")
    git(fleet, "commit", "-qam", "bad")
    result = gen("validate", "--no-checkov")
    assert result.exit_code == 1
    assert "seoul: spec: regions/seoul/region.yaml: region: regions/seoul/region.yaml:" in result.output
    assert "colour: unknown key" in result.output


def test_missing_checkov_is_skipped_or_required(gen: Gen, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after `pip install kubevc` there is no checkov: every other check runs and the policy
    scan is reported as skipped with how to enable it; --require-policy (CI) makes it a failure."""
    from kubevc.generator.validate import _tools

    monkeypatch.setenv("KUBEVC_CHECKOV", "/nonexistent/checkov")
    monkeypatch.setattr(_tools.shutil, "which", lambda _name: None)
    result = gen("validate", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    skipped = [n for n in doc["notes"] if n.startswith("checkov skipped: checkov is not installed")]
    assert skipped and "pip install 'checkov" in skipped[0] and "--require-policy" in skipped[0]
    required = gen("validate", "--require-policy")
    assert required.exit_code not in (0, 1), required.output
    assert "checkov is not installed" in required.output


def test_every_profile_and_architecture_passes_the_chart_schemas(gen: Gen, fleet: Path) -> None:
    """Each gateway profile, armhf, specific versions with labels and monitoring off render cleanly."""
    from kubevc.generator.repo import profile_names

    models = ", ".join(f"{{name: m-{p}, basePath: /models/m-{p}, profile: {p}}}" for p in profile_names())
    models = models.replace(
        "profile: classification}",
        "profile: classification, versionPolicy: specific, versions: [1, 2], "
        "versionLabels: {stable: 1, canary: 2}}",
    )
    add = gen(
        "region",
        "add",
        "pi",
        "--api-endpoint",
        "https://10.1.0.1:6443",
        "--arch",
        "armhf",
        "--arch",
        "arm64",
        "--nfs-server",
        "nas",
        "--nfs-path",
        "/m",
        "--no-monitoring",
    )
    assert add.exit_code == 0, add.output
    assert gen("region", "set", "pi", f"models=[{models}]").exit_code == 0
    # the catalogue's gateway image has no linux/arm/v7 build: name one for this armhf+arm64 region
    gateway = ["image", "add", "gateway", "registry.example.com/kubevc-gateway:0.1.0"]
    assert gen(*gateway, "--platform", "linux/arm/v7", "--platform", "linux/arm64").exit_code == 0
    result = gen("validate", "--no-checkov", "--region", "pi")
    assert result.exit_code == 0, result.output
    # which charts were rendered: from the progress messages (drawn only on a terminal by the CLI)
    from kubevc.generator.repo import Fleet
    from kubevc.generator.validate import validate_fleet

    steps: list[str] = []
    validate_fleet(Fleet.find(fleet), regions=["pi"], checkov=False, progress=steps.append, use_cache=False)
    assert any("helm render charts/kubevc-gateway" in m for m in steps)
    assert not any("helm render charts/kubevc-monitoring" in m for m in steps)  # monitoring off
