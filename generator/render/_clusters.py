"""``clusters/<name>/``: a cluster's Flux sync and the Kustomizations that install the rest.

One builder serves the regions (:func:`cluster_files`) and the monitoring hub
(:func:`kubevc.generator.render.hub_cluster_files`): the same five files, different Kustomizations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..spec import RegionSpec, flux
from ._accelerators import accelerators_folder
from ._common import FLUX_NS, HEADER, generated, generated_docs, kustomization, meta
from ._region_values import region_kps_folder

SOPS_DECRYPTION = flux.Decryption(provider="sops", secretRef=flux.LocalRef(name="sops-age"))


def flux_kustomization(
    name: str,
    path: str,
    timeout: str,
    *,
    interval: str = "1h0m0s",
    retry_interval: str = "1m0s",
    **extra: Any,
) -> flux.Kustomization:
    """A Flux Kustomization in flux-system applying ``path`` of the fleet repo (pruned)."""
    return flux.Kustomization(
        metadata=meta(name, FLUX_NS),
        spec=flux.KustomizationSpec(
            interval=interval,
            retryInterval=retry_interval,
            timeout=timeout,
            path=path,
            prune=True,
            sourceRef=flux.CrossNamespaceRef(kind="GitRepository", name="flux-system"),
            **extra,
        ),
    )


def cluster_tree(
    base: str,
    git_url: str,
    branch: str,
    infra: Sequence[flux.Kustomization],
    apps: flux.Kustomization,
    header: str = HEADER,
) -> dict[str, bytes]:
    """The files of ``clusters/<name>/`` (``base``): the flux-system sync, ``infra`` and ``apps``."""
    git_repo = flux.GitRepository(
        metadata=meta("flux-system", FLUX_NS),
        spec=flux.GitRepositorySpec(
            url=git_url,
            interval="1m0s",
            timeout="60s",
            ref=flux.GitRef(branch=branch),
            secretRef=flux.LocalRef(name="flux-system"),
        ),
    )
    sync = flux_kustomization("flux-system", f"./{base}", "5m0s", interval="10m0s", wait=False)
    return {
        f"{base}/flux-system/gotk-sync.yaml": generated_docs([git_repo.dump(), sync.dump()], header),
        f"{base}/flux-system/kustomization.yaml": generated(kustomization(["gotk-sync.yaml"]), header),
        f"{base}/infrastructure.yaml": generated_docs([k.dump() for k in infra], header),
        f"{base}/apps.yaml": generated(apps.dump(), header),
        f"{base}/kustomization.yaml": generated(
            kustomization(["flux-system", "infrastructure.yaml", "apps.yaml"]), header
        ),
    }


def cluster_files(region: RegionSpec) -> dict[str, bytes]:
    infra: list[flux.Kustomization] = []
    if region.monitoring:
        infra.append(
            flux_kustomization(
                "infra-controllers",
                f"./{region_kps_folder(region) or 'infrastructure/controllers'}",
                "10m0s",
                wait=True,
            )
        )
    infra.append(
        flux_kustomization(
            "infra-configs",
            "./infrastructure/configs",
            "5m0s",
            wait=True,
            dependsOn=[flux.DependsOn(name="infra-controllers")] if region.monitoring else None,
        )
    )
    devices = accelerators_folder(region)
    if devices is not None:  # device plugins: only where the region's inventory has accelerators
        infra.append(flux_kustomization("infra-accelerators", f"./{devices}", "10m0s", wait=True))
    apps = flux_kustomization(
        "apps",
        f"./apps/{region.name}",
        "15m0s",
        interval="10m0s",
        retry_interval="2m0s",
        wait=True,
        dependsOn=[flux.DependsOn(name="infra-configs")],
        decryption=SOPS_DECRYPTION,
    )
    if region.suspended:
        # maintenance window: the flux-system sync stays live, so the `resume` commit reaches the region
        for suspended in (*infra, apps):
            suspended.spec.suspend = True
    return cluster_tree(f"clusters/{region.name}", region.git.url, region.git.branch, infra, apps)
