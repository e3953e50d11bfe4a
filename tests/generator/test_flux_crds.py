"""Every Flux object kubevc writes validates strictly against the upstream CRDs (test data in ../shared/crds).

Strict = unknown fields are errors (as ``kubectl apply --validate=strict``): ``additionalProperties:
false`` is injected wherever a schema lists properties without saying anything about extra ones.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import Gen


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def crd_validators(shared_dir: Path) -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    validators = {}
    for path in sorted((shared_dir / "crds").glob("*.toolkit.fluxcd.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    assert validators
    return validators


def _flux_objects(root: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for top in ("clusters", "apps", "infrastructure"):
        for path in sorted((root / top).rglob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if isinstance(doc, dict) and "toolkit.fluxcd.io" in str(doc.get("apiVersion", "")):
                    found.append((path.relative_to(root).as_posix(), doc))
    return found


def _errors(validators: dict[tuple[str, str], jsonschema.Draft7Validator], obj: dict[str, Any]) -> list[str]:
    key = (obj["apiVersion"], obj["kind"])
    if key not in validators:
        return [f"no served CRD version for {key}"]
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validators[key].iter_errors(obj)]


def test_committed_demo_fleet_objects_match_the_crds(repo_root: Path, crd_validators: Any) -> None:
    objects = _flux_objects(repo_root / "fleet")
    kinds = {o["kind"] for _, o in objects}
    assert kinds == {"GitRepository", "Kustomization", "HelmRepository", "HelmRelease"}
    for rel, obj in objects:
        assert _errors(crd_validators, obj) == [], f"{rel}: {obj['kind']}/{obj['metadata']['name']}"


def test_freshly_rendered_variants_match_the_crds(gen: Gen, fleet: Path, crd_validators: Any) -> None:
    assert (
        gen(
            "region",
            "add",
            "daegu",
            "--api-endpoint",
            "https://10.7.0.1:6443",
            "--no-monitoring",
            "--nfs-server",
            "nas",
            "--nfs-path",
            "/m",
            "--git-url",
            "ssh://git@git.example.com/ops/fleet.git",
            "--git-branch",
            "edge",
        ).exit_code
        == 0
    )
    objects = _flux_objects(fleet)
    assert len(objects) >= 20
    for rel, obj in objects:
        assert _errors(crd_validators, obj) == [], rel


def test_strict_validation_can_fail(crd_validators: Any, repo_root: Path) -> None:
    """A typo'd field, a wrong type and an old API version are all caught."""
    _rel, release = next((r, o) for r, o in _flux_objects(repo_root / "fleet") if o["kind"] == "HelmRelease")
    typo = copy.deepcopy(release)
    typo["spec"]["driftDetecton"] = {"mode": "enabled"}
    assert any("driftDetecton" in e for e in _errors(crd_validators, typo))
    wrong = copy.deepcopy(release)
    wrong["spec"]["install"]["remediation"]["retries"] = "three"
    assert _errors(crd_validators, wrong)
    old = copy.deepcopy(release)
    old["apiVersion"] = "helm.toolkit.fluxcd.io/v2beta1"
    assert _errors(crd_validators, old)
