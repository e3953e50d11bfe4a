"""Per-model serving and runtimes in the generator: serving groups, the serving chart's
``deployments`` and the gateway's per-model backends, the migration of a single-Deployment fleet,
and ``model publish`` writing Triton's and MLServer's repository layouts."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from kubevc.gateway.testing import triton_add_model_source, write_mlserver_settings, write_triton_add_model
from kubevc.generator.errors import GitError, SpecError, StoreError
from kubevc.generator.models import (
    LocalStore,
    RemoteStore,
    layout_owner,
    open_store,
    publish_model,
    runtime_config_changes,
    triton_config,
    write_runtime_config,
)
from kubevc.generator.render import chart_region_values
from kubevc.generator.repo import load_profiles
from kubevc.generator.spec import FleetConfig, ModelSpec, RegionSpec, parse_tensor
from kubevc.generator.workflows import _models as model_workflows

from .conftest import Gen, git, run_gen, snapshot

REPO = Path(__file__).resolve().parents[2]
# The example fleet as the single-Deployment generator rendered it: `git archive 41c9bef:fleet`.
OLD_FLEET = Path(__file__).parent / "fixtures" / "fleet-single-deployment.tar.gz"


def region(models: list[dict[str, Any]]) -> RegionSpec:
    return RegionSpec.model_validate(
        {
            "name": "seoul",
            "apiEndpoint": "https://10.0.0.1:6443",
            "storage": {"nfs": {"server": "10.0.0.5", "path": "/srv/models"}},
            "git": {"url": "https://git.example.com/ops/fleet.git"},
            "models": models,
        }
    )


THREE = [
    {"name": "resnet", "basePath": "/models/resnet"},
    {
        "name": "add-one",
        "basePath": "/models/add-one",
        "runtime": "triton",
        "profile": "tensor",
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1]}],
        "outputs": [{"name": "Y", "datatype": "FP32", "shape": [-1]}],
    },
    {"name": "tiny", "basePath": "/models/tiny", "runtime": "mlserver"},
]


def values(spec: RegionSpec, app: str) -> dict[str, Any]:
    return chart_region_values(spec, app, FleetConfig(), load_profiles())


def helm_objects(values_: dict[str, Any], kind: str) -> list[str]:
    chart = helm_python.Chart.load(str(REPO / "charts/kubevc-serving"))
    rendered = chart.render(values_, name="kubevc-serving", namespace="kubevc")
    names = []
    for path, text in rendered.items():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc["kind"] == kind:
                names.append(doc["metadata"]["name"])
    return sorted(names)


# --------------------------------------------------------------------------- spec and render


def test_runtime_defaults_to_tfserving_and_group_to_the_model() -> None:
    model = ModelSpec(name="resnet", base_path="/models/resnet")
    assert (model.serving_runtime, model.group) == ("tfserving", "resnet")
    assert "runtime" not in model.model_dump(by_alias=True, exclude_none=True)


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ValueError, match="runtime"):
        ModelSpec.model_validate({"name": "m", "basePath": "/models/m", "runtime": "torchserve"})


def test_each_model_gets_its_deployment_and_gateway_backend() -> None:
    spec = region(THREE)
    serving = values(spec, "kubevc-serving")
    assert serving["deployments"] == [
        {"name": n, "runtime": r, "models": [n], "resources": {}, "nodeSelector": {}, "tolerations": []}
        for n, r in (("resnet", "tfserving"), ("add-one", "triton"), ("tiny", "mlserver"))
    ]
    gateway = values(spec, "kubevc-gateway")
    assert gateway["config"]["backends"] == [
        {"name": "resnet", "protocol": "tfserving", "address": "kubevc-serving-resnet:8500"},
        {"name": "add-one", "protocol": "v2", "address": "kubevc-serving-add-one:8001"},
        {"name": "tiny", "protocol": "v2", "address": "kubevc-serving-tiny:8081"},
    ]
    assert [(m["name"], m["backend"]) for m in gateway["config"]["models"]] == [
        ("resnet", "resnet"),
        ("add-one", "add-one"),
        ("tiny", "tiny"),
    ]
    assert gateway["networkPolicy"]["backendPorts"] == [8001, 8081, 8500, 9000]


def test_the_rendered_values_render_one_deployment_per_model() -> None:
    serving = values(region(THREE), "kubevc-serving")
    assert helm_objects(serving, "Deployment") == [
        "kubevc-serving-add-one",
        "kubevc-serving-resnet",
        "kubevc-serving-tiny",
    ]


def test_a_serving_group_shares_one_deployment() -> None:
    spec = region(
        [
            {"name": "a", "basePath": "/models/a", "servingGroup": "cls"},
            {"name": "b", "basePath": "/models/b", "servingGroup": "cls"},
        ]
    )
    assert [d["models"] for d in values(spec, "kubevc-serving")["deployments"]] == [["a", "b"]]
    assert [m["backend"] for m in values(spec, "kubevc-gateway")["config"]["models"]] == ["cls", "cls"]


def test_a_group_mixing_runtimes_is_refused() -> None:
    spec = region(
        [
            {"name": "a", "basePath": "/models/a", "servingGroup": "g"},
            {"name": "b", "basePath": "/models/b", "servingGroup": "g", "runtime": "mlserver"},
        ]
    )
    with pytest.raises(SpecError, match=r"models\[b\] runs mlserver but serving group 'g' runs tfserving"):
        values(spec, "kubevc-serving")


def test_triton_model_in_another_folder_names_it_for_the_backend() -> None:
    spec = region([{**THREE[1], "basePath": "/models/triton/addone"}])
    (model,) = values(spec, "kubevc-gateway")["config"]["models"]
    assert model["backendModel"] == "addone"


# --------------------------------------------------------------------------- migration


def _old_fleet(tmp_path: Path) -> Path:
    with tarfile.open(OLD_FLEET) as archive:
        archive.extractall(tmp_path, filter="data")
    root = tmp_path / "fleet-single-deployment"
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "fleet rendered by the single-Deployment generator")
    return root


def _serving_values(root: Path, name: str) -> dict[str, Any]:
    configmap = yaml.safe_load((root / f"apps/{name}/kubevc-serving-values.yaml").read_text())
    loaded: dict[str, Any] = yaml.safe_load(configmap["data"]["values.yaml"])
    return loaded


def test_a_single_deployment_fleet_migrates_by_render(tmp_path: Path) -> None:
    root = _old_fleet(tmp_path)
    before = _serving_values(root, "busan")
    assert "deployments" not in before
    assert helm_objects(before, "Deployment") == ["kubevc-serving"]
    assert run_gen("render", "--check", fleet=root).exit_code == 1  # the old rendering is stale

    result = run_gen("render", fleet=root)
    assert result.exit_code == 0, result.output

    after = _serving_values(root, "busan")
    models = [m["name"] for m in after["models"]]
    assert [d["name"] for d in after["deployments"]] == models
    # new per-model objects; the single Deployment (and its Service, HPA, PDB) is gone
    assert helm_objects(after, "Deployment") == sorted(f"kubevc-serving-{m}" for m in models)
    assert "kubevc-serving" not in helm_objects(after, "Service")
    gateway = yaml.safe_load((root / "apps/busan/kubevc-gateway-values.yaml").read_text())
    backends = yaml.safe_load(gateway["data"]["values.yaml"])["config"]["backends"]
    assert [b["address"] for b in backends] == [f"kubevc-serving-{m}:8500" for m in models]
    check = run_gen("render", "--check", fleet=root)
    assert check.exit_code == 0, check.output


# --------------------------------------------------------------------------- publish layouts


def _triton_model() -> ModelSpec:
    return ModelSpec.model_validate(THREE[1])


def _python_source(tmp_path: Path) -> Path:
    return write_triton_add_model(tmp_path / "src-python", addend=1, input_name="X", output_name="Y")


def _mlserver_source(tmp_path: Path) -> Path:
    src = tmp_path / "src-mlserver"
    write_mlserver_settings(src, "tiny_runtime.TinyClassifier")
    (src / "weights.bin").write_bytes(b"\x00" * 16)
    return src


def test_triton_publish_writes_config_and_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    publish_model(
        LocalStore(store), model=_triton_model(), folder="add-one", version=1, src=_python_source(tmp_path)
    )
    assert sorted(p.name for p in (store / "add-one").iterdir() if not p.name.startswith(".")) == [
        "1",
        "config.pbtxt",
    ]
    assert (store / "add-one/1/model.py").read_text() == triton_add_model_source(
        addend=1, input_name="X", output_name="Y"
    )
    config = (store / "add-one/config.pbtxt").read_text()
    assert 'name: "add-one"' in config and 'backend: "python"' in config
    assert "version_policy: { latest: { num_versions: 1 } }" in config
    assert '{ name: "X" data_type: TYPE_FP32 dims: [ -1 ] }' in config
    assert layout_owner(LocalStore(store), str(store / "add-one")) == "triton"


def test_triton_version_policy_follows_the_spec() -> None:
    model = ModelSpec.model_validate({**THREE[1], "versionPolicy": "specific", "versions": [1, 2]})
    from kubevc.generator.models._layouts import TritonSource

    text = triton_config(model, "add-one", TritonSource("backend", "python", ""))
    assert "version_policy: { specific: { versions: [ 1, 2 ] } }" in text


def test_mlserver_publish_writes_settings_for_the_newest_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    model = ModelSpec.model_validate(THREE[2])
    src = _mlserver_source(tmp_path)
    for version in (1, 2):
        publish_model(LocalStore(store), model=model, folder="tiny", version=version, src=src)
    settings = json.loads((store / "tiny/model-settings.json").read_text())
    assert settings == {
        "implementation": "tiny_runtime.TinyClassifier",
        "name": "tiny",
        "parameters": {"version": "2", "uri": "./2"},
    }
    # the source's settings are not copied into the version: MLServer would load it twice
    assert sorted(p.name for p in (store / "tiny/2").iterdir()) == ["weights.bin"]


@pytest.mark.parametrize(
    ("model", "files", "message"),
    [
        (THREE[1], {"weights.bin": ""}, "does not match runtime triton: it needs exactly one of"),
        (THREE[1], {"model.py": "", "model.onnx": ""}, r"found model.py and model.onnx"),
        (
            {**THREE[1], "inputs": None},
            {"model.py": ""},
            "Triton's python backend needs inputs and outputs in the model spec",
        ),
        (THREE[2], {"model.py": ""}, "does not match runtime mlserver: it needs model-settings.json"),
        (THREE[2], {"model-settings.json": "{}"}, "does not name the implementation"),
        (THREE[0], {"model.py": ""}, "is not a SavedModel"),
    ],
)
def test_files_that_do_not_match_the_runtime_write_nothing(
    tmp_path: Path, model: dict[str, Any], files: dict[str, str], message: str
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    for name, text in files.items():
        (src / name).write_text(text)
    spec = ModelSpec.model_validate(model)
    with pytest.raises(StoreError, match=message):
        publish_model(LocalStore(store), model=spec, folder=spec.name, version=1, src=src)
    assert list(store.iterdir()) == []


def test_publish_into_a_layout_another_runtime_owns_writes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    publish_model(
        LocalStore(store), model=_triton_model(), folder="add-one", version=1, src=_python_source(tmp_path)
    )
    before = sorted(str(p) for p in store.rglob("*"))
    mlserver = ModelSpec.model_validate({**THREE[2], "name": "add-one", "basePath": "/models/add-one"})
    with pytest.raises(StoreError, match="holds a triton model; add-one runs mlserver"):
        publish_model(
            LocalStore(store), model=mlserver, folder="add-one", version=2, src=_mlserver_source(tmp_path)
        )
    assert sorted(str(p) for p in store.rglob("*")) == before


def test_parse_tensor() -> None:
    tensor = parse_tensor("image:uint8:-1,224,224,3")
    assert (tensor.name, tensor.datatype, tensor.shape) == ("image", "UINT8", [-1, 224, 224, 3])
    with pytest.raises(SpecError, match="NAME:DATATYPE"):
        parse_tensor("X:FP32")


# --------------------------------------------------------------------------- CLI


def test_model_add_runtime_and_publish_through_the_cli(gen: Gen, fleet: Path, tmp_path: Path) -> None:
    add = ["model", "add", "add-one", "--region", "seoul", "--profile", "tensor", "--runtime", "triton"]
    result = gen(*add, "--input", "X:FP32:-1", "--output", "Y:FP32:-1")
    assert result.exit_code == 0, result.output
    region_yaml = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
    (model,) = [m for m in region_yaml["models"] if m["name"] == "add-one"]
    assert model["runtime"] == "triton"
    assert model["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1]}]
    gateway = (fleet / "apps/seoul/kubevc-gateway-values.yaml").read_text()
    assert "address: kubevc-serving-add-one:8001" in gateway
    assert gen("render", "--check").exit_code == 0

    store = tmp_path / "store"
    store.mkdir()
    src = _python_source(tmp_path)
    published = gen("model", "publish", "add-one", str(src), "--version", "1", "--store", str(store))
    assert published.exit_code == 0, published.output
    assert (store / "add-one/config.pbtxt").is_file() and (store / "add-one/1/model.py").is_file()


def test_cli_bad_runtime_input_is_one_line_and_changes_nothing(gen: Gen, fleet: Path, tmp_path: Path) -> None:
    before = snapshot(fleet)
    unknown = gen("model", "add", "m", "--region", "seoul", "--runtime", "torchserve")
    assert unknown.exit_code == 2 and "torchserve" in unknown.output
    bad_tensor = gen("model", "add", "m", "--region", "seoul", "--runtime", "triton", "--input", "X")
    assert bad_tensor.exit_code == 5
    assert len(bad_tensor.output.strip().splitlines()) == 1
    assert snapshot(fleet) == before
    assert gen("model", "add", "m", "--region", "seoul", "--runtime", "mlserver").exit_code == 0
    store = tmp_path / "store"
    store.mkdir()
    src = _python_source(tmp_path)
    wrong = gen("model", "publish", "m", str(src), "--version", "1", "--store", str(store))
    assert wrong.exit_code == 5
    assert "does not match runtime mlserver" in wrong.output
    assert len(wrong.output.strip().splitlines()) == 1
    assert list(store.iterdir()) == []
    shutil.rmtree(store)


# --------------------------------------------------------------------------- promote / rollback


def _policy(store: Path) -> str:
    (line,) = [x for x in (store / "add-one/config.pbtxt").read_text().splitlines() if "version_policy" in x]
    return line


def _head(fleet: Path) -> str:
    return git(fleet, "rev-parse", "HEAD")


def _add_and_publish_triton(gen: Gen, tmp_path: Path) -> Path:
    add = ["model", "add", "add-one", "--region", "seoul", "--profile", "tensor", "--runtime", "triton"]
    assert gen(*add, "--input", "X:FP32:-1", "--output", "Y:FP32:-1").exit_code == 0
    store = tmp_path / "store"
    store.mkdir()
    for version in (1, 2):
        src = write_triton_add_model(
            tmp_path / f"v{version}", addend=version, input_name="X", output_name="Y"
        )
        published = gen(
            "model", "publish", "add-one", str(src), "--version", str(version), "--store", str(store)
        )
        assert published.exit_code == 0, published.output
    return store


def test_promote_and_rollback_rewrite_the_triton_version_policy(
    gen: Gen, fleet: Path, tmp_path: Path
) -> None:
    store = _add_and_publish_triton(gen, tmp_path)
    assert _policy(store) == "version_policy: { latest: { num_versions: 1 } }"
    config_before = (store / "add-one/config.pbtxt").read_text()
    steps = [
        (["promote", "add-one", "--version", "1", "--label", "stable"], "[ 1 ]"),
        (["promote", "add-one", "--version", "2", "--label", "canary", "--canary-percent", "10"], "[ 1, 2 ]"),
        (["promote", "add-one", "--version", "2", "--label", "stable"], "[ 2 ]"),
        (["rollback", "add-one"], "[ 1 ]"),
    ]
    for args, versions in steps:
        result = gen("model", *args, "--store", str(store))
        assert result.exit_code == 0, result.output
        assert _policy(store) == f"version_policy: {{ specific: {{ versions: {versions} }} }}", args
        spec = yaml.safe_load((fleet / "regions/seoul/region.yaml").read_text())
        (model,) = [m for m in spec["models"] if m["name"] == "add-one"]
        assert f"[ {', '.join(map(str, model['versions']))} ]" == versions  # the store matches git
    # only the policy line changed: the rest is what publish wrote
    after = (store / "add-one/config.pbtxt").read_text().splitlines()
    assert [x for x in after if "version_policy" not in x] == [
        x for x in config_before.splitlines() if "version_policy" not in x
    ]
    assert not [p for p in (store / "add-one").iterdir() if p.name.startswith(".writing-")]


@pytest.mark.parametrize("git_option", [["--branch", "promote-add-one"], ["--no-commit"]])
def test_promote_under_review_warns_that_the_store_changes_now(
    gen: Gen, fleet: Path, tmp_path: Path, git_option: list[str]
) -> None:
    store = _add_and_publish_triton(gen, tmp_path)
    args = ["model", "promote", "add-one", "--version", "1", "--label", "stable", "--store", str(store)]
    result = gen(*args, *git_option)
    assert result.exit_code == 0, result.output
    assert "warning: the store's config.pbtxt of add-one is rewritten now" in result.output
    assert _policy(store) == "version_policy: { specific: { versions: [ 1 ] } }"
    plain = gen("model", "promote", "add-one", "--version", "2", "--label", "stable", "--store", str(store))
    assert plain.exit_code == 0 and "warning" not in plain.output  # committed at once: nothing to warn of


def test_promote_dry_run_prints_the_store_diff_and_writes_nothing(
    gen: Gen, fleet: Path, tmp_path: Path
) -> None:
    store = _add_and_publish_triton(gen, tmp_path)
    before, head = (store / "add-one/config.pbtxt").read_text(), _head(fleet)
    result = gen(
        "model",
        "promote",
        "add-one",
        "--version",
        "1",
        "--label",
        "stable",
        "--store",
        str(store),
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert f"dry run: would rewrite {store}/add-one/config.pbtxt" in result.output
    assert "-version_policy: { latest: { num_versions: 1 } }" in result.output
    assert "+version_policy: { specific: { versions: [ 1 ] } }" in result.output
    assert (store / "add-one/config.pbtxt").read_text() == before and _head(fleet) == head


def test_bad_promote_or_rollback_of_a_runtime_model_writes_nothing(
    gen: Gen, fleet: Path, tmp_path: Path
) -> None:
    store = _add_and_publish_triton(gen, tmp_path)
    assert (
        gen(
            "model", "promote", "add-one", "--version", "1", "--label", "stable", "--store", str(store)
        ).exit_code
        == 0
    )
    before, head = snapshot(fleet), _head(fleet)
    config = (store / "add-one/config.pbtxt").read_text()
    unpublished = gen(
        "model", "promote", "add-one", "--version", "3", "--label", "canary", "--store", str(store)
    )
    assert unpublished.exit_code == 5 and "version 3 of add-one is not published" in unpublished.output
    no_store = gen("model", "rollback", "add-one")  # nothing to roll back to, and no store: one line
    assert no_store.exit_code == 5 and len(no_store.output.strip().splitlines()) == 1
    assert (
        gen(
            "model", "promote", "add-one", "--version", "2", "--label", "stable", "--store", str(store)
        ).exit_code
        == 0
    )
    config = (store / "add-one/config.pbtxt").read_text()
    before, head = snapshot(fleet), _head(fleet)
    rollback = gen("model", "rollback", "add-one")  # the store is where Triton reads the rollback
    assert rollback.exit_code == 5 and "where is the model store?" in rollback.output
    assert len(rollback.output.strip().splitlines()) == 1
    # a config.pbtxt whose policy is not the one line publish writes is refused, not guessed at
    hand_edited = config.replace("version_policy: {", "version_policy: {\n")
    (store / "add-one/config.pbtxt").write_text(hand_edited)
    refused = gen("model", "rollback", "add-one", "--store", str(store))
    assert refused.exit_code == 5 and "not the one line" in refused.output
    assert (store / "add-one/config.pbtxt").read_text() == hand_edited
    assert snapshot(fleet) == before and _head(fleet) == head


def test_a_failed_commit_puts_the_store_back(
    gen: Gen, fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _add_and_publish_triton(gen, tmp_path)
    before = (store / "add-one/config.pbtxt").read_text()

    def fail(*_args: object, **_kwargs: object) -> None:
        raise GitError("commit failed (simulated)")

    monkeypatch.setattr(model_workflows, "apply_change", fail)
    result = gen("model", "promote", "add-one", "--version", "1", "--label", "stable", "--store", str(store))
    assert result.exit_code != 0 and "simulated" in result.output
    assert (store / "add-one/config.pbtxt").read_text() == before


def _mlserver_files(store: Path) -> dict[str, Any]:
    top = json.loads((store / "tiny/model-settings.json").read_text())
    canary_file = store / "tiny/canary/model-settings.json"
    canary = json.loads(canary_file.read_text()) if canary_file.exists() else None
    return {
        "stable": (top["parameters"]["version"], top["parameters"]["uri"]),
        "canary": None if canary is None else (canary["parameters"]["version"], canary["parameters"]["uri"]),
    }


def test_promote_and_rollback_rewrite_the_mlserver_settings(gen: Gen, fleet: Path, tmp_path: Path) -> None:
    assert gen("model", "add", "tiny", "--region", "seoul", "--runtime", "mlserver").exit_code == 0
    store = tmp_path / "store"
    store.mkdir()
    src = _mlserver_source(tmp_path)
    for version in (1, 2):
        assert (
            gen(
                "model", "publish", "tiny", str(src), "--version", str(version), "--store", str(store)
            ).exit_code
            == 0
        )
    assert _mlserver_files(store) == {"stable": ("2", "./2"), "canary": None}  # the newest, unlabelled
    steps = [
        (["promote", "tiny", "--version", "1", "--label", "stable"], ("1", "./1"), None),
        (["promote", "tiny", "--version", "2", "--label", "canary"], ("1", "./1"), ("2", "../2")),
        (["promote", "tiny", "--version", "2", "--label", "stable"], ("2", "./2"), None),
        (["rollback", "tiny"], ("1", "./1"), None),
    ]
    for args, stable, canary in steps:
        result = gen("model", *args, "--store", str(store))
        assert result.exit_code == 0, result.output
        assert _mlserver_files(store) == {"stable": stable, "canary": canary}, args
    # a publish after a promote keeps serving the stable label's version
    assert gen("model", "publish", "tiny", str(src), "--version", "3", "--store", str(store)).exit_code == 0
    assert _mlserver_files(store)["stable"] == ("1", "./1")
    settings = json.loads((store / "tiny/model-settings.json").read_text())
    assert (settings["name"], settings["implementation"]) == ("tiny", "tiny_runtime.TinyClassifier")


def test_runtime_config_rewrite_over_ssh(tmp_path: Path) -> None:
    """The same rewrite through the RemoteStore (pyinfra's @local connector: the commands SSH runs)."""
    export = tmp_path / "export"
    export.mkdir()
    model = _triton_model()
    publish_model(LocalStore(export), model=model, folder="add-one", version=1, src=_python_source(tmp_path))
    promoted_spec = model.model_copy(
        update={"version_policy": "specific", "versions": [1], "version_labels": {"stable": 1}}
    )
    with open_store(None, "@local", str(export)) as store:
        assert isinstance(store, RemoteStore)
        changes = runtime_config_changes(store, [("seoul", promoted_spec)], "add-one")
        assert [c.path for c in changes] == [f"{export}/add-one/config.pbtxt"]
        write_runtime_config(store, changes, lambda _msg: None)
        assert (
            runtime_config_changes(store, [("seoul", promoted_spec)], "add-one") == []
        )  # nothing left to do
    assert (
        "version_policy: { specific: { versions: [ 1 ] } }" in (export / "add-one/config.pbtxt").read_text()
    )
    other = promoted_spec.model_copy(
        update={"versions": [1, 2], "version_labels": {"stable": 1, "canary": 2}}
    )
    with pytest.raises(SpecError, match="regions seoul, busan share the store folder"):
        runtime_config_changes(LocalStore(export), [("seoul", promoted_spec), ("busan", other)], "add-one")
