"""``kubevc-gen hub ...``: the hub's tree, regions in agent mode and back (real git, kustomize, Helm SDK)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kubevc.generator.errors import SpecError
from kubevc.generator.render import KPS_VALUES, footprint, hub_kps_values, region_kps_values
from kubevc.generator.repo import Fleet
from kubevc.generator.spec import HUB_FILE, HubSpec, check_label_value
from kubevc.generator.validate import kubectl_path, validate_fleet

from .conftest import Gen, git, snapshot
from .test_flux_crds import _errors, _flux_objects, _strict, crd_validators  # noqa: F401  (fixture)

HUB = ["hub", "set", "--api-endpoint", "https://10.7.0.1:6443", "--remote-write-url",
       "https://metrics.hub.example.com/api/v1/write", "--retention", "30d"]  # fmt: skip
REGIONS = ("busan", "seoul")


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def release_values(path: Path) -> dict[str, Any]:
    (release,) = [d for d in load_docs(path) if d["kind"] == "HelmRelease"]
    values: dict[str, Any] = release["spec"]["values"]
    return values


@pytest.fixture
def hub_fleet(gen: Gen, fleet: Path) -> Path:
    result = gen(*HUB)
    assert result.exit_code == 0, result.output
    return fleet


def test_hub_set_renders_the_hub_and_light_regions_in_one_commit(hub_fleet: Path) -> None:
    root = hub_fleet
    assert git(root, "log", "-1", "--format=%s").strip() == "hub set https://10.7.0.1:6443"
    assert git(root, "status", "--porcelain") == ""
    hub = yaml.safe_load((root / HUB_FILE).read_text())
    assert hub["apiEndpoint"] == "https://10.7.0.1:6443" and hub["retention"] == "30d"

    hub_values = release_values(root / "infrastructure/hub/controllers/kube-prometheus-stack.yaml")
    spec = hub_values["prometheus"]["prometheusSpec"]
    assert spec["enableRemoteWriteReceiver"] is True and spec["retention"] == "30d"
    assert hub_values["grafana"]["enabled"] and hub_values["alertmanager"]["enabled"]
    ingress = hub_values["prometheus"]["ingress"]
    assert ingress["hosts"] == ["metrics.hub.example.com"] and ingress["paths"] == ["/api/v1/write"]
    assert ingress["tls"][0]["secretName"]

    for region in REGIONS:
        values = release_values(root / f"infrastructure/agents/{region}/kube-prometheus-stack.yaml")
        prom = values["prometheus"]
        assert prom["agentMode"] is True
        assert prom["prometheusSpec"]["externalLabels"] == {"region": region}
        (rw,) = prom["prometheusSpec"]["remoteWrite"]
        assert rw["url"] == "https://metrics.hub.example.com/api/v1/write"
        # credentials only by Secret reference, never a value
        assert rw["basicAuth"] == {
            "username": {"name": "kubevc-hub-remote-write", "key": "username"},
            "password": {"name": "kubevc-hub-remote-write", "key": "password"},
        }
        assert values["grafana"] == {"enabled": False} and values["alertmanager"] == {"enabled": False}
        assert values["kubeStateMetrics"] == {"enabled": True} and values["nodeExporter"] == {"enabled": True}
        infra = {d["metadata"]["name"]: d for d in load_docs(root / f"clusters/{region}/infrastructure.yaml")}
        assert infra["infra-controllers"]["spec"]["path"] == f"./infrastructure/agents/{region}"
        assert infra["infra-controllers"]["spec"]["decryption"]["provider"] == "sops"
        # dashboards and rules live on the hub now
        kust = yaml.safe_load((root / f"apps/{region}/kustomization.yaml").read_text())
        assert not any("kubevc-monitoring" in r for r in kust["resources"])
        assert not (root / f"apps/{region}/kubevc-monitoring-values.yaml").exists()
    hub_apps = yaml.safe_load((root / "apps/hub/kustomization.yaml").read_text())
    assert hub_apps["resources"] == ["../base/kubevc-monitoring", "kubevc-monitoring-values.yaml"]
    (cm,) = load_docs(root / "apps/hub/kubevc-monitoring-values.yaml")
    assert yaml.safe_load(cm["data"]["values.yaml"]) == {
        "commonLabels": {"kubevc.io/region": "hub"},
        "region": "",
        "regions": ["busan", "seoul"],
    }
    # nothing secret was generated anywhere
    for top in ("clusters", "apps", "infrastructure", "hub"):
        for path in (root / top).rglob("*.yaml"):
            kinds = {d.get("kind") for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)}
            assert "Secret" not in kinds, path


def test_both_modes_validate_and_hub_remove_restores_the_per_region_stack(gen: Gen, fleet: Path) -> None:
    before = git(fleet, "rev-parse", "HEAD").strip()
    no_hub = validate_fleet(Fleet.find(fleet), checkov=False)
    assert no_hub.findings == [] and no_hub.regions == list(REGIONS)

    assert gen(*HUB).exit_code == 0
    with_hub = validate_fleet(Fleet.find(fleet), checkov=False)
    # missing remote-write credentials are findings (they were notes): remote write is refused without them
    assert sorted((f.region, f.check, f.file) for f in with_hub.findings) == [
        ("hub", "secrets", f"infrastructure/agents/{r}/") for r in sorted(REGIONS)
    ]
    assert with_hub.regions == [*REGIONS, "hub"]
    assert with_hub.checked[("hub", "helm")] == 1 and with_hub.checked[("hub", "kustomize")] >= 3

    result = gen("hub", "remove")
    assert result.exit_code == 0, result.output
    assert git(fleet, "diff", "--stat", before, "HEAD") == ""  # exactly the tree before the hub
    assert "no monitoring hub" in gen("hub", "show").output


def test_clusters_hub_builds_with_kubectl_kustomize(hub_fleet: Path) -> None:
    out = subprocess.run(
        [kubectl_path(), "kustomize", str(hub_fleet / "clusters/hub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    objs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    assert set(objs) == {
        ("GitRepository", "flux-system"),
        ("Kustomization", "flux-system"),
        ("Kustomization", "infra-controllers"),
        ("Kustomization", "infra-configs"),
        ("Kustomization", "apps"),
    }
    assert objs[("Kustomization", "apps")]["spec"]["path"] == "./apps/hub"
    assert objs[("Kustomization", "infra-controllers")]["spec"]["path"] == "./infrastructure/hub/controllers"
    for path in ("infrastructure/hub/controllers", "apps/hub", "infrastructure/agents/seoul"):
        proc = subprocess.run(
            [kubectl_path(), "kustomize", str(hub_fleet / path)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr


def test_every_flux_object_matches_the_crds_in_hub_mode(hub_fleet: Path, crd_validators: Any) -> None:  # noqa: F811
    objects = _flux_objects(hub_fleet)
    assert any(rel.startswith("clusters/hub/") for rel, _ in objects)
    assert any(rel.startswith("infrastructure/agents/") for rel, _ in objects)
    for rel, obj in objects:
        assert _errors(crd_validators, obj) == [], f"{rel}: {obj['kind']}/{obj['metadata']['name']}"


def test_agent_spec_is_a_valid_prometheus_agent(shared_dir: Path, hub_fleet: Path) -> None:
    """The agent's remoteWrite, externalLabels and resources are a valid PrometheusAgent spec."""
    crd = yaml.safe_load((shared_dir / "crds/monitoring.coreos.com_prometheusagents.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v.get("served")]
    validator = jsonschema.Draft7Validator(_strict(copy.deepcopy(version["schema"]["openAPIV3Schema"])))
    values = release_values(hub_fleet / "infrastructure/agents/seoul/kube-prometheus-stack.yaml")
    spec = values["prometheus"]["prometheusSpec"]
    obj: dict[str, Any] = {
        "apiVersion": f"monitoring.coreos.com/{version['name']}",
        "kind": "PrometheusAgent",
        "metadata": {"name": "agent"},
        "spec": {k: spec[k] for k in ("externalLabels", "remoteWrite", "resources")},
    }
    assert [e.message for e in validator.iter_errors(obj)] == []
    bad = copy.deepcopy(obj)
    bad["spec"]["remoteWrite"][0]["basicAuth"]["password"] = "plain"
    assert list(validator.iter_errors(bad)), "a plain password must not validate"


def test_operator_sops_files_are_listed_and_plain_secrets_refused(gen: Gen, hub_fleet: Path) -> None:
    folder = hub_fleet / "infrastructure/agents/seoul"
    encrypted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "kubevc-hub-remote-write", "namespace": "monitoring"},
        "stringData": {
            "username": "ENC[AES256_GCM,data:c2VvdWw=,type:str]",
            "password": "ENC[AES256_GCM,data:eA==,type:str]",
        },
        "sops": {
            "age": [{"recipient": "age1example", "enc": "-----BEGIN AGE ENCRYPTED FILE-----"}],
            "version": "3.9.0",
        },
    }
    (folder / "remote-write.sops.yaml").write_text(yaml.safe_dump(encrypted))
    git(hub_fleet, "add", "infrastructure/agents/seoul/remote-write.sops.yaml")
    git(hub_fleet, "commit", "-q", "-m", "seoul: encrypted remote-write credentials")
    result = gen("render")
    assert result.exit_code == 0, result.output
    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert "remote-write.sops.yaml" in kust["resources"]
    report = validate_fleet(Fleet.find(hub_fleet), checkov=False)
    # only busan (no credentials committed) is left: a finding since remote write is refused without them
    assert [(f.check, f.file) for f in report.findings if f.check != "schema"] == [
        ("secrets", "infrastructure/agents/busan/")
    ]
    # the same Secret in plain text is refused by validate
    plain = {k: v for k, v in encrypted.items() if k != "sops"}
    (folder / "remote-write.sops.yaml").write_text(yaml.safe_dump(plain))
    findings = validate_fleet(Fleet.find(hub_fleet), checkov=False).findings
    assert any(f.check == "secrets" and "plain-text Secret" in f.message for f in findings)


def test_dry_run_and_branch(gen: Gen, fleet: Path) -> None:
    before = snapshot(fleet)
    result = gen(*HUB, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "+++ b/infrastructure/agents/seoul/kube-prometheus-stack.yaml" in result.output
    assert "agentMode: true" in result.output
    assert snapshot(fleet) == before
    result = gen(*HUB, "--branch", "central-monitoring")
    assert result.exit_code == 0, result.output
    assert git(fleet, "branch", "--show-current").strip() == "main"  # the work tree stays on main
    assert git(fleet, "rev-parse", "--verify", "-q", "central-monitoring").strip()
    assert "gh pr create" in result.output


def test_hub_set_changes_only_what_is_given(gen: Gen, hub_fleet: Path) -> None:
    text = (
        (hub_fleet / HUB_FILE).read_text().replace("retention: 30d", "retention: 30d  # a month on the hub")
    )
    (hub_fleet / HUB_FILE).write_text(text)
    git(hub_fleet, "commit", "-q", "-am", "comment")
    result = gen("hub", "set", "--retention", "90d")
    assert result.exit_code == 0, result.output
    hub = (hub_fleet / HUB_FILE).read_text()
    assert "retention: 90d  # a month on the hub" in hub and "https://10.7.0.1:6443" in hub
    values = release_values(hub_fleet / "infrastructure/hub/controllers/kube-prometheus-stack.yaml")
    assert values["prometheus"]["prometheusSpec"]["retention"] == "90d"
    assert gen("hub", "set", "--retention", "90d").output.startswith("nothing to change")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-endpoint", "http://10.7.0.1:6443"], "must be an https:// URL"),
        (["--api-endpoint", "https://10.7.0.1:6443", "--remote-write-url", "http://hub/api/v1/write"],
         "remoteWriteUrl 'http://hub/api/v1/write' must be an https:// URL"),
        (["--api-endpoint", "https://10.8.0.1:6443"], "the hub cannot be region 'seoul'"),
        (["--api-endpoint", "https://10.7.0.1:6443", "--remote-write-url", "https://10.9.0.1/api/v1/write"],
         "the hub cannot be region 'busan'"),
        (["--api-endpoint", "https://10.7.0.1:6443", "--kube-context", "seoul"],
         "is region 'seoul''s context"),
        (["--api-endpoint", "https://10.7.0.1:6443", "--retention", "a while"], "retention"),
        (["--api-endpoint", "https://10.7.0.1:6443", "--credentials-secret", "Not_A_Name"],
         "not a valid Secret name"),
        ([], "needs --api-endpoint"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_nothing_written(
    gen: Gen, fleet: Path, args: list[str], message: str
) -> None:
    before = snapshot(fleet)
    result = gen("hub", "set", *args)
    assert result.exit_code == 5, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert snapshot(fleet) == before


def test_credentials_in_the_url_are_refused_without_being_echoed(gen: Gen, fleet: Path) -> None:
    before = snapshot(fleet)
    url = "https://writer:s3cr3t-pw@metrics.example.com/api/v1/write"
    result = gen("hub", "set", "--api-endpoint", "https://10.7.0.1:6443", "--remote-write-url", url)
    assert result.exit_code == 5 and "must not carry credentials" in result.output
    assert "s3cr3t-pw" not in result.output
    assert snapshot(fleet) == before


def test_region_names_must_be_label_values_and_not_the_hub(gen: Gen, hub_fleet: Path) -> None:
    for bad in ("", "-seoul", "a" * 64, "seoul/x", "서울"):
        with pytest.raises(SpecError, match="not a valid label value"):
            check_label_value(bad)
    assert check_label_value("seoul-2") == "seoul-2"
    before = snapshot(hub_fleet)
    result = gen("region", "add", "hub", "--api-endpoint", "https://10.6.0.1:6443",
                 "--nfs-server", "10.6.0.10", "--nfs-path", "/m")  # fmt: skip
    assert result.exit_code == 5 and "clashes with the hub" in result.output
    assert snapshot(hub_fleet) == before
    # a hand-edited region file with a name that is no label value: clear error, nothing written
    path = hub_fleet / "regions/seoul/region.yaml"
    path.write_text(path.read_text().replace("name: seoul", "name: Seoul_1"))
    before = snapshot(hub_fleet)
    result = gen("hub", "set", "--retention", "60d")
    assert result.exit_code == 5 and "name" in result.output and "Seoul_1" in result.output
    assert snapshot(hub_fleet) == before


def test_show_and_remove_without_a_hub(gen: Gen, fleet: Path) -> None:
    assert "no monitoring hub" in gen("hub", "show").output
    result = gen("hub", "remove")
    assert result.exit_code == 5 and "there is no monitoring hub" in result.output


def test_show_prints_the_effective_settings(gen: Gen, hub_fleet: Path) -> None:
    out = gen("hub", "show").output
    assert "remoteWriteUrl: https://metrics.hub.example.com/api/v1/write" in out
    assert "regions in agent mode: busan, seoul" in out
    assert "missing encrypted credentials: infrastructure/agents/seoul/*.sops.yaml" in out


def test_an_ip_hub_gets_an_ingress_without_a_host_rule() -> None:
    values = hub_kps_values(HubSpec(api_endpoint="https://10.7.0.1:6443"))
    ingress = values["prometheus"]["ingress"]
    assert "hosts" not in ingress and ingress["paths"] == ["/api/v1/write"]


def test_agent_mode_is_lighter_than_the_per_region_stack(fleet: Path) -> None:
    hub = HubSpec(api_endpoint="https://10.7.0.1:6443")
    region = Fleet.find(fleet).load("seoul")
    full = footprint(KPS_VALUES)
    agent = footprint(region_kps_values(region, hub))
    names = [r[0] for r in agent]
    assert "grafana" not in names and "alertmanager" not in names and names[0] == "prometheus-agent"
    assert sum(r[3] for r in agent) < sum(r[3] for r in full)
    assert all(r[4] is not None for r in agent)  # every agent-mode pod has a memory limit


def test_docs_footprint_table_matches_the_rendered_values(repo_root: Path, fleet: Path) -> None:
    from kubevc.generator.render import footprint_markdown

    table = footprint_markdown(Fleet.find(fleet).load("seoul"), HubSpec(api_endpoint="https://10.7.0.1:6443"))
    assert "| **sum per cluster** | | **190** | **816** | **2144** | **80** | **240** | **544** |" in table
    assert table in (repo_root / "docs/monitoring.md").read_text()


def test_region_remove_in_hub_mode_drops_its_agent_and_the_hub_forgets_it(gen: Gen, hub_fleet: Path) -> None:
    result = gen("region", "remove", "busan")
    assert result.exit_code == 0, result.output
    assert not (hub_fleet / "infrastructure/agents/busan").exists()
    assert (hub_fleet / "infrastructure/agents/seoul/kube-prometheus-stack.yaml").is_file()
    (cm,) = load_docs(hub_fleet / "apps/hub/kubevc-monitoring-values.yaml")
    assert yaml.safe_load(cm["data"]["values.yaml"])["regions"] == ["seoul"]
    assert git(hub_fleet, "status", "--porcelain") == ""
    assert gen("render", "--check").exit_code == 0
