"""validate's speed-ups must not change what it finds: cached schema validators, charts loaded
once, libyaml parsing, prefetched kustomize builds and checkov in runs of a few regions."""

from __future__ import annotations

import copy
import json
import stat
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubevc.generator.repo import Fleet
from kubevc.generator.validate import _validator as validate_mod  # where CHECKOV_BATCH is read

from .conftest import Gen

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "kubevc"},
    "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        },
    },
}


def _upstream(obj: dict[str, Any]) -> tuple[str, str] | None:
    """What kubernetes_validate.validate itself says: None, or (path, message)."""
    try:
        kubernetes_validate.validate(obj, validate_mod.KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return ".".join(str(p) for p in exc.path), exc.message
    return None


def _cached(schemas: Any, obj: dict[str, Any]) -> tuple[str, str] | None:
    import jsonschema

    try:
        schemas.validate(obj)
    except jsonschema.ValidationError as exc:
        return ".".join(str(p) for p in exc.path), exc.message
    return None


def test_cached_schemas_agree_with_kubernetes_validate() -> None:
    schemas = validate_mod.Schemas(validate_mod.KUBE_VERSION)
    bad_field = copy.deepcopy(DEPLOYMENT)
    bad_field["spec"]["replicas"] = "two"
    unknown = copy.deepcopy(DEPLOYMENT)
    unknown["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"
    # the same kind over and over through one cached validator: no result sticks to the next object
    for obj in (DEPLOYMENT, bad_field, DEPLOYMENT, unknown, DEPLOYMENT):
        assert _cached(schemas, obj) == _upstream(obj)
    assert _cached(schemas, bad_field) is not None and _cached(schemas, unknown) is not None
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dta": {}}
    assert _cached(schemas, cm) == _upstream(cm) is not None
    crd = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"}}
    for _ in range(2):  # the miss is cached too, and still raised every time
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            schemas.validate(crd)


def test_libyaml_loading_keeps_the_pure_loaders_errors() -> None:
    text = "a: 1\n---\nb: [2, 3]\n---\n- not a mapping\n"
    assert validate_mod.load_docs(text) == [{"a": 1}, {"b": [2, 3]}]
    broken = "a: [1\nb: 2\n"
    with pytest.raises(yaml.YAMLError) as fast:
        validate_mod.load_docs(broken)
    with pytest.raises(yaml.YAMLError) as pure:
        list(yaml.safe_load_all(broken))
    assert str(fast.value) == str(pure.value)


def test_each_region_gets_its_own_helm_render(fleet: Path) -> None:
    """Charts are loaded once and rendered per region: no region sees another's values."""
    report = validate_mod.Report(regions=["seoul", "busan"])
    v = validate_mod._Validator(Fleet.find(fleet), report, lambda _m: None)
    try:
        for name in ("seoul", "busan"):
            v.region(name)
    finally:
        v.close()
    assert not report.findings, report.findings
    assert len(v._charts) >= 3  # one loaded chart per chart path, shared by both regions
    for region, other in (("seoul", "busan"), ("busan", "seoul")):
        text = v.rendered[region]["kubevc-serving.yaml"]
        assert f"kubevc.io/region: {region}" in text
        assert f"kubevc.io/region: {other}" not in text


FAKE_CHECKOV = """#!{python}
import json, os, sys
root = sys.argv[sys.argv.index("-d") + 1]
with open(os.environ["FAKE_CHECKOV_LOG"], "a") as log:
    log.write(json.dumps(sorted(os.listdir(root))) + "\\n")
failed = []
for region in sorted(os.listdir(root)):
    for name in sorted(os.listdir(os.path.join(root, region))):
        if name == "fleet-tree.yaml":
            failed.append({{"check_id": "CKV_FAKE_1", "check_name": "fake", "resource": "Namespace.kubevc",
                           "file_path": "/" + region + "/" + name}})
print(json.dumps({{"check_type": "kubernetes", "results": {{"failed_checks": failed}},
                  "summary": {{"passed": 3, "failed": len(failed), "resource_count": 5}}}}))
"""


def test_checkov_runs_in_batches_and_names_every_region(
    gen: Gen, fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = tmp_path / "checkov"
    exe.write_text(FAKE_CHECKOV.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "runs.log"
    monkeypatch.setenv("KUBEVC_CHECKOV", str(exe))
    monkeypatch.setenv("FAKE_CHECKOV_LOG", str(log))
    monkeypatch.setattr(validate_mod, "CHECKOV_BATCH", 1)
    report = validate_mod.validate_fleet(Fleet.find(fleet))
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    # One run per batch, each with only its own regions; batches run two at a time, so the order
    # they start in is the scheduler's (seen reversed at load 12).
    assert sorted(runs) == [["busan"], ["seoul"]]
    found = sorted(str(f) for f in report.findings)
    assert found == [
        "busan: checkov: fleet-tree.yaml: Namespace.kubevc: CKV_FAKE_1: fake",
        "seoul: checkov: fleet-tree.yaml: Namespace.kubevc: CKV_FAKE_1: fake",
    ]
    notes = [n for n in report.notes if n.startswith("checkov:")]
    assert notes == [
        "checkov: 6 passed, 2 failed, 10 resources; skipped by policy: "
        + ", ".join(sorted(validate_mod.CHECKOV_SKIPS))
    ]
    assert report.checked[("seoul", "checkov")] == 1 and report.checked[("busan", "checkov")] == 1
    # the default batch size: one run for a small fleet, as before
    monkeypatch.setattr(validate_mod, "CHECKOV_BATCH", 10)
    log.unlink()
    validate_mod.validate_fleet(Fleet.find(fleet))
    assert [json.loads(line) for line in log.read_text().splitlines()] == [["busan", "seoul"]]
