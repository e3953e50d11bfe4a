"""gateway.yaml: the documented example is valid, unknown keys name their path, env overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kubevc.gateway import ConfigError, GatewayConfig, load_config, parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway-config.md"


def doc_example() -> dict:
    match = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/gateway-config.md has no yaml example"
    return yaml.safe_load(match.group(1))


def test_documented_example_is_valid_and_matches_defaults() -> None:
    config = parse_config(doc_example(), env={})
    assert config.backends[0].max_message_bytes == 64 << 20
    assert config.models[0].input.resize == "letterbox"
    # every default in the doc is the model's default: a config with only the required keys equals it
    minimal = {
        "backends": [{"name": "tfserving", "protocol": "tfserving", "address": "kubevc-serving:8500"}],
        "models": [
            {
                "name": "yolov5",
                "backend": "tfserving",
                "backendModel": "yolov5",
                "input": {"kind": "image", "name": "images"},
                "canary": {"percent": 10},  # canary is off (null) by default; its label defaults
            }
        ],
    }
    assert parse_config(minimal, env={}) == config
    no_canary = {**minimal, "models": [{k: v for k, v in minimal["models"][0].items() if k != "canary"}]}
    assert parse_config(no_canary, env={}).models[0].canary is None


def test_dump_round_trips_with_camel_case_keys() -> None:
    config = parse_config(doc_example(), env={})
    dumped = config.model_dump(by_alias=True)
    assert "maxBodyBytes" in dumped["limits"] and "backendModel" in dumped["models"][0]
    assert GatewayConfig.model_validate(dumped) == config


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda d: d["server"].update(bogus=1), "server.bogus: unknown key"),
        (lambda d: d["models"][0]["input"].update(colour="red"), "models.0.input.colour: unknown key"),
        (lambda d: d["models"][0].update(backend="nope"), "models[0].backend: 'nope' is not one of"),
        (lambda d: d["backends"][0].update(name="Bad_Name"), "backends.0.name"),
        (lambda d: d["backends"][0].update(address="no-port"), "is not host:port"),
        (lambda d: d["models"][0]["input"].update(layout="HWC"), "models.0.input.layout"),
        (lambda d: d["models"][0]["input"].update(kind="text"), "vocabFile: required for kind text"),
        (lambda d: d["models"][0]["output"].update(labelsFile="x.txt", labels=["a"]), "labels or labelsFile"),
        (lambda d: d["models"].append(dict(d["models"][0])), "duplicate name"),
        (lambda d: d["models"][0]["canary"].update(percent=101), "models.0.canary.percent"),
        (lambda d: d["models"][0]["canary"].update(label="stable"), "differ from 'stable'"),
        (lambda d: d["models"][0]["output"].update(boxFormat="cxcywh"), "models.0.output.boxFormat"),
        (
            lambda d: d["backends"][0].update(protocol="v2"),
            "models[0].canary: version labels need a tfserving backend",
        ),
    ],
)
def test_invalid_configs_name_the_problem(patch, message) -> None:
    doc = doc_example()
    patch(doc)
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(doc, env={})


def test_env_overrides_port_and_log_level(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(doc_example()))
    config = load_config(path, env={"KUBEVC_GATEWAY_PORT": "9090", "KUBEVC_GATEWAY_LOG_LEVEL": "DEBUG"})
    assert (config.server.port, config.server.log_level) == (9090, "debug")
    with pytest.raises(ConfigError, match="environment override"):
        load_config(path, env={"KUBEVC_GATEWAY_PORT": "99999"})


def test_relative_files_resolve_next_to_the_config(tmp_path: Path) -> None:
    doc = doc_example()
    doc["models"][0]["output"]["labelsFile"] = "labels.txt"
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_config(path, env={}).models[0].output.labels_file == str(tmp_path / "labels.txt")


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)


def test_the_inflight_body_cap_must_hold_the_largest_body() -> None:
    with pytest.raises(ConfigError, match=r"maxInflightBodyBytes .* is below maxBodyBytes"):
        parse_config({"limits": {"maxBodyBytes": 2048, "maxInflightBodyBytes": 1024}})
    limits = parse_config({"limits": {"maxBodyBytes": 2048, "maxInflightBodyBytes": 2048}}).limits
    assert limits.max_inflight_body_bytes == 2048
