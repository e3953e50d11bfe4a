"""One function per mutating command: load the fleet -> change specs -> render -> apply (one commit).

The CLI (:mod:`kubevc.generator.cli`) parses options and prints; everything a command *does* to the
fleet repo is here, built from the layers below (models, live, validate, render, repo, spec).
"""

from ._fleet import (
    StorageOptions,
    add_region,
    init_fleet,
    plan_full_render,
    plan_regions_render,
    remove_region,
    render_fleet,
    set_region_keys,
    storage_from_options,
    validate_new_region,
    write_regions,
)
from ._hub import HubSetResult, remove_hub, set_hub
from ._models import (
    add_model,
    check_min_memory,
    check_new_model,
    promote_model,
    rollback_model,
    set_canary_share,
)
from ._region_config import add_image, label_regions, set_suspended_regions
from ._regions import add_node, record_inventory, set_suspended
from ._remove import remove_model, remove_node
from ._rollout import (
    Clock,
    Gate,
    abort_rollout,
    advance_rollout,
    require_running,
    rollout_gate,
    start_rollout,
)
from ._secrets import SecretEntry, list_secrets, read_entries, remove_secret, set_secret

__all__ = [
    "Clock",
    "Gate",
    "HubSetResult",
    "SecretEntry",
    "StorageOptions",
    "abort_rollout",
    "add_image",
    "add_model",
    "add_node",
    "add_region",
    "advance_rollout",
    "check_min_memory",
    "check_new_model",
    "init_fleet",
    "label_regions",
    "list_secrets",
    "plan_full_render",
    "plan_regions_render",
    "promote_model",
    "read_entries",
    "record_inventory",
    "remove_hub",
    "remove_model",
    "remove_node",
    "remove_region",
    "remove_secret",
    "render_fleet",
    "require_running",
    "rollback_model",
    "rollout_gate",
    "set_canary_share",
    "set_hub",
    "set_region_keys",
    "set_secret",
    "set_suspended",
    "set_suspended_regions",
    "start_rollout",
    "storage_from_options",
    "validate_new_region",
    "write_regions",
]
