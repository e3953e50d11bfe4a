"""kubevc-model-store: static PVs bound to their claims, unique across regions, NFS and iSCSI."""

from __future__ import annotations

from typing import Any

from tests.charts.rendering import Manifest, manifests, render

NFS = {"nfs": {"server": "10.20.0.5", "path": "/srv/nfs/models"}}
ISCSI = {
    "type": "iscsi",
    "iscsi": {"targetPortal": "10.20.0.6:3260", "iqn": "iqn.2026-01.internal.example:models", "lun": 1},
}
PUBLISHER = NFS | {"publisher": {"enabled": True, "job": {"enabled": True}}}


def objects(values: dict[str, Any], namespace: str = "kubevc") -> list[Manifest]:
    return manifests(render("kubevc-model-store", values, namespace=namespace))


def of_kind(found: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in found if obj["kind"] == kind]


def test_claim_and_volume_are_bound_to_each_other() -> None:
    rendered = objects(NFS | {"claimName": "seoul-models"})
    (volume,) = of_kind(rendered, "PersistentVolume")
    (claim,) = of_kind(rendered, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "seoul-models"
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert volume["spec"]["claimRef"] | {"apiVersion": "v1"} == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "kubevc",
        "name": "seoul-models",
    }
    # Static binding: an empty class keeps the default StorageClass from provisioning instead.
    assert volume["spec"]["storageClassName"] == claim["spec"]["storageClassName"] == ""
    assert volume["spec"]["accessModes"] == claim["spec"]["accessModes"] == ["ReadOnlyMany"]


def test_nfs_volume_is_read_only_with_mount_options() -> None:
    (volume,) = of_kind(objects(NFS), "PersistentVolume")
    assert volume["spec"]["nfs"] == {"server": "10.20.0.5", "path": "/srv/nfs/models", "readOnly": True}
    assert volume["spec"]["mountOptions"] == ["nfsvers=4.1", "hard", "noatime"]
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_volume_names_never_collide_across_regions_or_releases() -> None:
    names = {
        of_kind(objects(NFS, namespace), "PersistentVolume")[0]["metadata"]["name"]
        for namespace in ("kubevc-seoul", "kubevc-busan")
    }
    names.add(
        of_kind(objects(NFS | {"fullnameOverride": "other"}), "PersistentVolume")[0]["metadata"]["name"]
    )
    assert len(names) == 3, names


def test_iscsi_volume() -> None:
    rendered = objects(ISCSI)
    (volume,) = of_kind(rendered, "PersistentVolume")
    assert volume["spec"]["iscsi"] == {
        "targetPortal": "10.20.0.6:3260",
        "iqn": "iqn.2026-01.internal.example:models",
        "lun": 1,
        "fsType": "ext4",
        "readOnly": True,
    }
    assert "mountOptions" not in volume["spec"] and "nfs" not in volume["spec"]
    assert not of_kind(rendered, "Job")


def test_publisher_gets_its_own_read_write_volume_and_claim() -> None:
    rendered = objects(PUBLISHER)
    volumes = {v["metadata"]["labels"]["kubevc.io/access"]: v for v in of_kind(rendered, "PersistentVolume")}
    claims = {
        c["metadata"]["labels"]["kubevc.io/access"]: c for c in of_kind(rendered, "PersistentVolumeClaim")
    }
    assert volumes.keys() == claims.keys() == {"read-only", "read-write"}
    writer = volumes["read-write"]
    assert writer["spec"]["accessModes"] == ["ReadWriteMany"]
    assert writer["spec"]["nfs"]["readOnly"] is False
    assert claims["read-write"]["spec"]["volumeName"] == writer["metadata"]["name"]
    assert writer["spec"]["claimRef"]["name"] == claims["read-write"]["metadata"]["name"]


def test_publisher_job_is_a_hook_on_the_read_write_claim() -> None:
    rendered = objects(PUBLISHER)
    (job,) = of_kind(rendered, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    pod = job["spec"]["template"]["spec"]
    claim = next(v for v in pod["volumes"] if v["name"] == "models")["persistentVolumeClaim"]["claimName"]
    assert claim == "kubevc-model-store-publisher"
    (policy,) = of_kind(rendered, "NetworkPolicy")
    assert (
        policy["spec"]["podSelector"]["matchLabels"].items()
        <= job["spec"]["template"]["metadata"]["labels"].items()
    )


def test_publisher_is_off_by_default() -> None:
    rendered = objects(NFS)
    assert sorted(obj["kind"] for obj in rendered) == ["PersistentVolume", "PersistentVolumeClaim"]
