"""kubectl habits (issue 19): -o table|json|yaml|name, documented exit codes, one-line SSH errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ..kubeapi import make_pki
from .conftest import Gen, git, run_gen, snapshot
from .kubeapi_contract import Fleetside, healthy_objects


@pytest.mark.parametrize(
    ("args", "kind", "names"),
    [
        (["region", "list"], "RegionList", ["region/busan", "region/seoul"]),
        (["region", "show", "seoul"], "Region", ["region/seoul"]),
        (["model", "list"], "ModelList", []),
        (["hub", "show"], "Hub", []),
    ],
)
def test_every_list_and_show_speaks_json_yaml_and_name(
    gen: Gen, args: list[str], kind: str, names: list[str]
) -> None:
    as_json = gen(*args, "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["schemaVersion"] == 1 and doc["kind"] == kind
    as_yaml = gen(*args, "-o", "yaml")
    assert as_yaml.exit_code == 0 and yaml.safe_load(as_yaml.stdout) == doc
    as_names = gen(*args, "-o", "name")
    assert as_names.exit_code == 0 and as_names.stdout.splitlines() == names


def test_region_json_is_the_spec_and_its_effective_defaults(gen: Gen) -> None:
    doc = json.loads(gen("region", "list", "-o", "json").output)
    seoul = next(item for item in doc["items"] if item["name"] == "seoul")
    assert seoul["spec"]["apiEndpoint"] == "https://10.8.0.1:6443"
    assert seoul["spec"]["architectures"] == ["arm64"]
    assert seoul["effective"] == {
        "kubeContext": "seoul",
        "clusterName": "seoul",
        "podCidr": "10.42.0.0/16",
        "serviceCidr": "10.43.0.0/16",
    }


def test_validate_json_report(gen: Gen, fleet: Path) -> None:
    path = fleet / "regions/busan/region.yaml"
    path.write_text(path.read_text().replace("lun: 0", "lun: -1"))
    result = gen("validate", "--no-checkov", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)  # progress goes to stderr: stdout is the document alone
    assert doc["kind"] == "ValidationReport" and doc["summary"]["exitCode"] == 1
    assert {"region", "check", "file", "object", "message"} <= set(doc["findings"][0])
    assert gen("validate", "--no-checkov", "-o", "name").stdout.splitlines() == ["region/busan"]


def test_exit_codes_split_usage_bad_input_and_findings(gen: Gen, fleet: Path, tmp_path: Path) -> None:
    assert gen("region", "list", "--no-such-option").exit_code == 2  # click: usage
    assert gen("region", "list", "-o", "xml").exit_code == 2
    missing = run_gen("region", "list", fleet=tmp_path)
    assert missing.exit_code == 5 and "not a kubevc fleet repo" in missing.output  # not 2
    assert gen("region", "show", "nosuch").exit_code == 5
    target = fleet / "clusters/seoul/apps.yaml"
    target.write_text(target.read_text() + "# drift\n")
    assert gen("render", "--check").exit_code == 1  # a failed check


def test_node_without_a_key_gets_one_line_at_prepare(
    gen: Gen, fleet: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh keys or config
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert gen("node", "add", "seoul", "10.8.0.11").exit_code == 0
    before = snapshot(fleet)
    result = gen("node", "prepare", "seoul", "--dry-run")
    assert result.exit_code == 5
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "node 10.8.0.11 of region seoul has no sshKey" in errors[0] and "--ssh-key" in errors[0]
    assert snapshot(fleet) == before
    missing_key = gen("node", "add", "seoul", "10.8.0.12", "--ssh-key", str(tmp_path / "nope"))
    assert missing_key.exit_code == 0
    result = gen("node", "prepare", "seoul", "10.8.0.12", "--dry-run")
    assert result.exit_code == 5 and "does not exist" in result.output


def test_context_needs_exactly_one_region(gen: Gen) -> None:
    result = gen("status", "--context", "other")
    assert result.exit_code == 5 and "applies to one region" in result.output


def test_status_reads_every_file_of_a_kubeconfig_list_and_honours_context(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pki").mkdir()
    side = Fleetside(make_pki(tmp_path / "pki"), tmp_path)
    try:
        side.add("seoul", healthy_objects(git(fleet, "rev-parse", "HEAD").strip(), "seoul"))
        empty = tmp_path / "empty-kubeconfig"
        empty.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
        monkeypatch.setenv("KUBECONFIG", f"{empty}:{side.kubeconfig()}")  # seoul is in the second
        result = run_gen("status", "seoul", "-o", "json", "--timeout", "20s", fleet=fleet)
        seoul = json.loads(result.stdout)["regions"][0]
        assert seoul["api"]["reachable"] is True, result.output
        result = run_gen("status", "seoul", "--context", "elsewhere", "-o", "json", fleet=fleet)
        assert result.exit_code == 3
        seoul = json.loads(result.stdout)["regions"][0]
        assert seoul["context"] == "elsewhere" and "'elsewhere' is not in kubeconfig" in seoul["reason"]
    finally:
        side.close()


def test_status_and_reconcile_word_a_closed_port_the_same(fleet: Path, tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    side = Fleetside(make_pki(tmp_path / "pki"), tmp_path)
    try:
        side.add("seoul", healthy_objects(git(fleet, "rev-parse", "HEAD").strip(), "seoul"))
        kubeconfig = str(side.kubeconfig())
        side.servers["seoul"].stop()  # nothing listens on the port any more
        status = run_gen("status", "seoul", "-o", "json", "--kubeconfig", kubeconfig, fleet=fleet)
        assert status.exit_code == 3
        reason = json.loads(status.stdout)["regions"][0]["reason"]
        assert reason.startswith("connection refused"), reason
        reconcile = run_gen("reconcile", "seoul", "--kubeconfig", kubeconfig, "--timeout", "20s", fleet=fleet)
        assert reconcile.exit_code == 3
        assert "seoul: not reconciled: connection refused" in reconcile.output
    finally:
        side.close()
