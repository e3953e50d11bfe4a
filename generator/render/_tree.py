"""The whole rendered tree as a pure function of a :class:`~kubevc.generator.render.RenderInputs`.

The tree follows docs/architecture.md ("The fleet repo shape"): ``charts/`` (vendored),
``infrastructure/`` and ``apps/base/`` (shared), ``clusters/<region>/`` and ``apps/<region>/``
(per region) and, with a monitoring hub, the hub's tree and the regions' agent folders.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from ..repo import under_folders
from ..spec import FleetConfig, Profile, RegionSpec
from ._accelerators import region_accelerator_files
from ._alertmanager import check_region_alertmanager_secrets
from ._apps import app_base_files, region_app_files
from ._cache import RenderCache, region_key
from ._clusters import cluster_files
from ._hub import apply_hub
from ._infrastructure import infrastructure_files
from ._inputs import RenderInputs
from ._notifications import add_notifications
from ._region_values import region_infrastructure_files


def region_files(
    region: RegionSpec, cfg: FleetConfig, profiles: Mapping[str, Profile], labels: Mapping[str, bytes]
) -> dict[str, bytes]:
    """The files of one region: ``clusters/<region>/`` and ``apps/<region>/``."""
    files = cluster_files(region)
    files.update(region_app_files(region, cfg, profiles, labels))
    files.update(region_infrastructure_files(region, cfg))
    files.update(region_accelerator_files(region))
    add_notifications(files, region, cfg)
    return files


def render_tree(inputs: RenderInputs, cache: RenderCache | None = None) -> dict[str, bytes]:
    """Every generated file's bytes, by path in the fleet repo.

    ``cache`` (optional) gives back the files of regions whose inputs did not change; it only
    looks up and records here, loading and saving it is the caller's business.
    """
    cfg = inputs.config
    files: dict[str, bytes] = {}
    files.update(inputs.charts)
    files.update(infrastructure_files(cfg))
    files.update(app_base_files(cfg))
    for region in sorted(inputs.regions, key=lambda r: r.name):
        if cache is None:
            files.update(region_files(region, cfg, inputs.profiles, inputs.labels))
            continue
        key = region_key(region, cfg, inputs.labels) if cache.path is not None else None
        files.update(
            cache.region_files(
                key, functools.partial(region_files, region, cfg, inputs.profiles, inputs.labels)
            )
        )
    if inputs.hub is None:  # each region's own Alertmanager reads its receivers' Secrets
        check_region_alertmanager_secrets(inputs.regions, cfg)
    else:
        # the hub's tree, and the regions with monitoring in agent mode
        regions = sorted(inputs.regions, key=lambda r: r.name)
        apply_hub(inputs.hub, cfg, regions, inputs.sops_files, files)
    if inputs.bootstrap_owned:  # `flux bootstrap` owns these folders: render nothing there
        files = {rel: data for rel, data in files.items() if not under_folders(rel, inputs.bootstrap_owned)}
    return files
