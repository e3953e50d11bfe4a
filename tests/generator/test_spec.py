"""The region spec models: defaults, validation, file loading with line numbers, comment-keeping saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevc.generator.errors import SpecError
from kubevc.generator.repo import Fleet, load_region, parse_region, save_region
from kubevc.generator.spec import NodeSpec, RegionSpec

BASE = {
    "name": "seoul",
    "apiEndpoint": "https://10.8.0.1:6443",
    "storage": {"nfs": {"server": "10.8.0.10", "path": "/export/models"}},
    "git": {"url": "https://git.example.com/ops/fleet.git"},
}


def test_defaults_follow_the_distribution() -> None:
    k3s = RegionSpec.model_validate(BASE)
    assert (k3s.effective_pod_cidr, k3s.effective_service_cidr) == ("10.42.0.0/16", "10.43.0.0/16")
    assert k3s.effective_kube_context == "seoul" and k3s.effective_cluster_name == "seoul"
    kubeadm = RegionSpec.model_validate({**BASE, "distribution": "kubeadm"})
    assert kubeadm.effective_pod_cidr == "10.244.0.0/16"


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"name": "../x"}, "DNS-1123"),
        ({"name": "a/b"}, "DNS-1123"),
        ({"name": "Seoul"}, "DNS-1123"),
        ({"apiEndpoint": "10.8.0.1:6443"}, "https:// URL"),
        ({"podCidr": "10.42.0.0/33"}, "not a valid CIDR"),
        ({"podCidr": "10.42.0.1/16"}, "not a valid CIDR"),
        ({"podCidr": "10.0.0.0/8", "serviceCidr": "10.43.0.0/16"}, "overlap"),
        ({"architectures": ["sparc"]}, "architectures"),
        ({"architectures": []}, "architectures"),
        ({"storage": {}}, "exactly one of storage"),
        ({"storage": {"iscsi": {"portal": "p:3260", "iqn": "nope", "lun": 0}}}, "iqn"),
        ({"monitoring": "maybe"}, "monitoring"),
        ({"nodes": [{"host": "a", "sshPort": 70000}]}, "sshPort"),
        ({"nodes": [{"host": "a", "sshUsr": "pi"}]}, "unknown key"),
        ({"models": [{"name": "m", "basePath": "/m", "versionPolicy": "specific"}]}, "versions"),
    ],
)
def test_bad_specs_are_rejected(patch: dict[str, object], needle: str) -> None:
    from pydantic import ValidationError

    from kubevc.generator.repo import format_validation_error

    with pytest.raises((ValidationError, SpecError)) as info:
        RegionSpec.model_validate({**BASE, **patch})
    text = (
        "\n".join(format_validation_error(info.value, "f"))
        if isinstance(info.value, ValidationError)
        else str(info.value)
    )
    assert needle in text


def test_unknown_key_names_file_line_and_path() -> None:
    text = (
        "name: seoul\napiEndpoint: https://10.8.0.1:6443\nstorage:\n  nfs:\n    server: s\n    path: /x\n"
        "git:\n  url: https://g.example/x.git\nnodes:\n  - host: 10.0.0.1\n    sshUsr: pi\n"
    )
    with pytest.raises(SpecError) as info:
        parse_region(text, "regions/seoul/region.yaml")
    assert "regions/seoul/region.yaml:11: nodes[0].sshUsr: unknown key (did you mean 'sshUser'?)" in str(
        info.value
    )


def test_save_region_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "regions" / "seoul" / "region.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "# my region\nname: seoul  # the name\napiEndpoint: https://10.8.0.1:6443\n"
        "storage:\n  nfs:\n    server: s   # NAS\n    path: /x\ngit:\n  url: https://g.example/x.git\n"
    )
    spec = load_region(tmp_path, "seoul")
    spec.nodes.append(NodeSpec(host="10.0.0.5", role="server"))
    save_region(tmp_path, spec)
    text = path.read_text()
    assert "# my region" in text and "# the name" in text and "# NAS" in text
    assert load_region(tmp_path, "seoul").nodes[0].host == "10.0.0.5"


def test_fleet_find_refuses_a_plain_folder(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a kubevc fleet repo"):
        Fleet.find(tmp_path)
