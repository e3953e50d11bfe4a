"""``apps/``: one HelmRelease per kubevc chart (``apps/base/``) and each region's values
(``apps/<region>/``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from ..spec import FleetConfig, Profile, RegionSpec, flux, gateway_model, pick_profile, secret_resource
from ._common import (
    FLUX_NS,
    REGION_LABEL,
    generated,
    kustomization,
    meta,
    values_configmap,
    values_configmap_name,
)
from ._region_values import with_region_values
from ._serving import (
    gateway_backend_ports,
    gateway_backends,
    gateway_canary,
    gateway_route,
    serving_deployments,
)

# Charts in install order; each one's HelmRelease depends on the one before where it needs it.
APPS: tuple[str, ...] = ("kubevc-model-store", "kubevc-serving", "kubevc-gateway", "kubevc-monitoring")
APP_DEPENDS: dict[str, list[str]] = {
    "kubevc-model-store": [],
    "kubevc-serving": ["kubevc-model-store"],
    "kubevc-gateway": ["kubevc-serving"],
    "kubevc-monitoring": [],
}


def app_base_files(cfg: FleetConfig) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for app in APPS:
        depends = [flux.DependsOn(name=d) for d in APP_DEPENDS[app]] or None
        release = flux.HelmRelease(
            metadata=meta(app, cfg.namespace, **{"app.kubernetes.io/part-of": "kubevc"}),
            spec=flux.HelmReleaseSpec(
                interval="10m0s",
                timeout="10m0s",
                chart=flux.HelmChartTemplate(
                    spec=flux.HelmChartTemplateSpec(
                        chart=f"./charts/{app}",
                        sourceRef=flux.CrossNamespaceRef(
                            kind="GitRepository", name="flux-system", namespace=FLUX_NS
                        ),
                        interval="10m0s",
                        reconcileStrategy="Revision",
                    )
                ),
                dependsOn=depends,
                install=flux.Install(remediation=flux.Remediation(retries=3)),
                upgrade=flux.Upgrade(
                    cleanupOnFail=True, remediation=flux.Remediation(retries=3, remediateLastFailure=True)
                ),
                driftDetection=flux.DriftDetection(mode="enabled"),
                valuesFrom=[
                    flux.ValuesReference(
                        kind="ConfigMap", name=values_configmap_name(app), valuesKey="values.yaml"
                    )
                ],
            ),
        )
        files[f"apps/base/{app}/helmrelease.yaml"] = generated(release.dump())
        files[f"apps/base/{app}/kustomization.yaml"] = generated(kustomization(["helmrelease.yaml"]))
    return files


def region_apps(region: RegionSpec) -> list[str]:
    return [a for a in APPS if region.monitoring or a != "kubevc-monitoring"]


def parse_labels(data: bytes, rel: str, where: str) -> list[str]:
    """Class labels of a label file (one per line); trailing blank lines dropped."""
    try:
        labels = [line.strip() for line in data.decode("utf-8").splitlines()]
    except UnicodeDecodeError:
        raise SpecError(f"{where}: {rel} is not UTF-8 text") from None
    while labels and not labels[-1]:
        labels.pop()
    return labels


def _gateway_models(
    region: RegionSpec, profiles: Mapping[str, Profile], label_files: Mapping[str, bytes] | None
) -> tuple[list[dict[str, Any]], bool]:
    """Gateway ``models[]`` from the profiles (generator/profiles/*.yaml); True if the store is read."""
    models: list[dict[str, Any]] = []
    needs_store = False
    for m in region.models:
        prof = pick_profile(profiles, m.profile)
        needs_store = needs_store or prof.needs_model_store
        entry: dict[str, Any] = {"name": m.name, "backend": "tfserving", "signature": m.signature}
        entry.update(gateway_route(m))  # per-model serving: the model's own Deployment
        entry.update(gateway_model(prof, m.base_path))
        if m.wire is not None and entry["input"].get("kind") == "image":  # `model add`'s wire form
            entry["input"]["dtype"] = "string" if m.wire == "encoded" else m.wire
        if m.labels_file and label_files is not None:
            where = f"regions/{region.name}/region.yaml: models[{m.name}].labelsFile"
            data = label_files.get(m.labels_file)
            if data is None:
                raise SpecError(f"{where}: {m.labels_file} does not exist in the fleet repo")
            entry["output"]["labels"] = parse_labels(data, m.labels_file, where)
        if m.has_canary:  # requests naming no version/label: canaryPercent % to canary, the rest to stable
            entry["canary"] = gateway_canary(m)
        models.append(entry)
    return models, needs_store


def chart_region_values(
    region: RegionSpec,
    app: str,
    cfg: FleetConfig,
    profiles: Mapping[str, Profile],
    label_files: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """The per-region values of ``app`` (they go into the ``<app>-values`` ConfigMap).

    ``label_files`` holds the model label files (``models/<name>/labels.txt``) by path in the fleet repo;
    None leaves the labels out.
    """
    labels = {REGION_LABEL: region.name}
    if app == "kubevc-serving":
        values: dict[str, Any] = {
            "commonLabels": labels,
            "architectures": list(region.architectures),
            "serviceMonitor": {"enabled": region.monitoring},
        }
        if region.models:
            values["models"] = [
                {
                    "name": m.name,
                    "basePath": m.base_path,
                    "versionPolicy": m.version_policy,
                    "versions": list(m.versions),
                    "versionLabels": dict(m.version_labels),
                }
                for m in region.models
            ]
            values["deployments"] = serving_deployments(region)
        return values
    if app == "kubevc-model-store":
        storage = region.storage
        if storage.nfs is not None:
            return {
                "commonLabels": labels,
                "type": "nfs",
                "nfs": {"server": storage.nfs.server, "path": storage.nfs.path},
            }
        assert storage.iscsi is not None
        return {
            "commonLabels": labels,
            "type": "iscsi",
            "iscsi": {
                "targetPortal": storage.iscsi.portal,
                "iqn": storage.iscsi.iqn,
                "lun": storage.iscsi.lun,
                "fsType": storage.iscsi.fs_type,
            },
        }
    if app == "kubevc-gateway":
        models, needs_store = _gateway_models(region, profiles, label_files)
        gateway: dict[str, Any] = {
            "commonLabels": labels,
            "architectures": list(region.architectures),
            "serviceMonitor": {"enabled": region.monitoring},
            "config": {"models": models},
        }
        if region.models:
            gateway["config"]["backends"] = gateway_backends(region)
            ports = gateway_backend_ports(region)
            if ports is not None:
                gateway["networkPolicy"] = {"backendPorts": ports}
        if needs_store:  # a profile reads a file (vocabFile) from the model store
            gateway["modelStore"] = {"enabled": True}
        return gateway
    if app == "kubevc-monitoring":
        return {"commonLabels": labels, "region": region.name}
    raise KeyError(app)


def region_app_files(
    region: RegionSpec,
    cfg: FleetConfig,
    profiles: Mapping[str, Profile],
    label_files: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    base = f"apps/{region.name}"
    files: dict[str, bytes] = {}
    resources: list[str] = []
    for app in region_apps(region):
        resources.append(f"../base/{app}")
    for app in region_apps(region):
        values = with_region_values(
            region, app, cfg, chart_region_values(region, app, cfg, profiles, label_files)
        )
        files[f"{base}/{app}-values.yaml"] = generated(
            values_configmap(app, cfg.namespace, region.name, values)
        )
        resources.append(f"{app}-values.yaml")
    resources += [secret_resource(s) for s in region.secrets]  # SOPS files: `kubevc-gen secret set`
    files[f"{base}/kustomization.yaml"] = generated(kustomization(resources))
    return files
