"""Region specs in, the fleet tree (what Flux reconciles) out.

:func:`render_tree` is a pure function of a :class:`RenderInputs` (regions, fleet config, hub,
profiles, label files, chart files); :func:`read_inputs` reads those from a fleet repo, and
:func:`plan_render` / :func:`plan_with_regions` / :func:`plan_remove_region` turn a render into a
:class:`~kubevc.generator.repo.Change` that also deletes generated files nobody wants any more.
One module per part of the tree: clusters, infrastructure, apps, charts, the monitoring hub; the
render cache apart.
"""

from ._apps import APPS, chart_region_values, parse_labels, region_apps
from ._cache import RENDER_CACHE, RENDER_CACHE_ENV, RenderCache, code_digest, region_key
from ._charts import read_chart_files
from ._common import (
    GENERATED_MARK,
    HEADER,
    KPS_CHART_VERSION,
    kps_release_docs,
    values_configmap_name,
)
from ._hub import AGENT_VALUES_BASE, footprint, footprint_markdown, hub_kps_values, region_kps_values
from ._infrastructure import KPS_VALUES
from ._inputs import FROM_REPO, FromRepo, RenderInputs, read_inputs
from ._placement import model_placement, serving_placement
from ._plan import desired_tree, plan_remove_region, plan_render, plan_with_regions, region_folders
from ._serving import CANARY_LABEL
from ._tree import region_files, render_tree

__all__ = [
    "AGENT_VALUES_BASE",
    "APPS",
    "CANARY_LABEL",
    "FROM_REPO",
    "GENERATED_MARK",
    "HEADER",
    "KPS_CHART_VERSION",
    "KPS_VALUES",
    "RENDER_CACHE",
    "RENDER_CACHE_ENV",
    "FromRepo",
    "RenderCache",
    "RenderInputs",
    "chart_region_values",
    "code_digest",
    "desired_tree",
    "footprint",
    "footprint_markdown",
    "hub_kps_values",
    "kps_release_docs",
    "model_placement",
    "parse_labels",
    "plan_remove_region",
    "plan_render",
    "plan_with_regions",
    "read_chart_files",
    "read_inputs",
    "region_apps",
    "region_files",
    "region_folders",
    "region_key",
    "region_kps_values",
    "render_tree",
    "serving_placement",
    "values_configmap_name",
]
