"""Model profiles are YAML data (generator/profiles/), validated strictly, accepted by the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevc.gateway import parse_config
from kubevc.generator.errors import SpecError
from kubevc.generator.repo import load_profiles, profile
from kubevc.generator.spec import PROFILES_DIR, gateway_model

from .conftest import Gen, snapshot


def test_shipped_profiles() -> None:
    profiles = load_profiles()
    assert sorted(profiles) == ["classification", "classification-299", "detection", "tensor", "text"]
    assert (profiles["classification"].input.width, profiles["classification-299"].input.width) == (224, 299)
    det = profiles["detection"]
    assert (det.input.width, det.input.resize, det.output.postprocess) == (640, "letterbox", "yolo")
    assert (det.output.confidence_threshold, det.output.iou_threshold) == (0.25, 0.45)
    assert profiles["text"].input.sequence_length == 128 and profiles["text"].needs_model_store


@pytest.mark.parametrize("name", sorted(load_profiles()))
def test_every_profile_is_a_valid_gateway_model(name: str) -> None:
    """What render writes for a profile is accepted by the gateway's own config parser."""
    entry = {"name": f"m-{name}", "backend": "tfserving", **gateway_model(profile(name), f"/models/m-{name}")}
    config = parse_config(
        {
            "backends": [{"name": "tfserving", "protocol": "tfserving", "address": "127.0.0.1:8500"}],
            "models": [entry],
        }
    )
    model = config.models[0]
    assert model.input.kind == profile(name).input.kind
    if name == "text":
        assert model.input.vocab_file == f"/models/m-{name}/vocab.txt"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("widht: 224", "profiles/bad.yaml:6: input.widht: unknown key"),
        ("sequenceLength: 10", "do not apply to input kind 'image'"),
        ("width: -3", "input.width"),
    ],
)
def test_profile_files_are_validated_strictly(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: bad\ndescription: x\ninput:\n  kind: image\n  name: input\n  "
        + text
        + "\noutput:\n  postprocess: topk\n  topK: 5\n"
    )
    with pytest.raises(SpecError) as exc:
        load_profiles(tmp_path)
    assert message in str(exc.value)


def test_profile_name_must_match_file_and_yolo_keys_need_yolo(tmp_path: Path) -> None:
    src = (PROFILES_DIR / "detection.yaml").read_text()
    (tmp_path / "other.yaml").write_text(src)
    with pytest.raises(SpecError, match="does not match the file name 'other'"):
        load_profiles(tmp_path)
    (tmp_path / "other.yaml").unlink()
    (tmp_path / "detection.yaml").write_text(src.replace("postprocess: yolo", "postprocess: topk"))
    with pytest.raises(SpecError, match="do not apply to postprocess 'topk'"):
        load_profiles(tmp_path)


def test_region_spec_refuses_an_unknown_profile(gen: Gen, fleet: Path) -> None:
    before = snapshot(fleet)
    result = gen("region", "set", "seoul", "models=[{name: m, basePath: /models/m, profile: segmentation}]")
    assert result.exit_code == 5 and "unknown model profile 'segmentation'" in result.output
    assert snapshot(fleet) == before
