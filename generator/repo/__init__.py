"""The fleet repo on disk and in git: YAML round-trips, region/hub/profile files, one-commit changes.

Everything here reads or writes files (or runs ``git``); the data it reads and writes are the
models of :mod:`kubevc.generator.spec`. Rendering (:mod:`kubevc.generator.render`) sits above and
hands its result back here as a :class:`Change` for :func:`apply_change`.
"""

from ._apply import apply_change, check_fleet_branch
from ._bootstrap import BOOTSTRAP_COMPONENTS, bootstrap_owned_folders, flux_system_folder, under_folders
from ._bounded import MAX_BYTES, MAX_DEPTH, MAX_NODES, check_yaml_text, read_yaml_file
from ._fleet import (
    REGION_HEADER,
    Fleet,
    load_region,
    merge_into,
    parse_region,
    region_path,
    region_to_yaml,
    save_region,
)
from ._fleetconfig import add_catalogue_image, parse_fleet_config
from ._git import (
    Change,
    ChangeOptions,
    ChangeResult,
    Git,
    HasRoot,
    SyncState,
    compare_revision,
    fleet_commit,
    parse_revision,
    unified_diff,
)
from ._hubfile import HUB_HEADER, hub_notes, hub_to_yaml, load_hub, missing_credentials, parse_hub, sops_files
from ._journal import FAULT_STEP_ENV, recover
from ._lock import fleet_lock, holds_lock
from ._overrides import check_value_overrides, merge_values, read_values_file
from ._problems import format_validation_error
from ._profiles import load_profiles, profile, profile_names, read_label_files
from ._render_state import RENDER_STATE, RegionStamp, RenderState, file_digests, sha256_hex
from ._rollouts import ROLLOUT_HEADER, load_rollouts, parse_rollout, rollout_to_yaml, running_rollout
from ._scaffold import TEMPLATE_DIR, init_fleet, is_machine_local, kubevc_source_from
from ._selection import select_regions
from ._setkeys import apply_assignments
from ._sops import (
    SOPS_CONFIG,
    AgeKey,
    age_recipients,
    check_age_key_path,
    check_age_recipient,
    encrypt_secret,
    new_age_key,
    sops_binary,
)
from ._yamlio import (
    atomic_write,
    dump_documents,
    dump_generated,
    dump_roundtrip,
    line_of,
    literal,
    load_roundtrip,
    to_plain,
)

__all__ = [
    "BOOTSTRAP_COMPONENTS",
    "FAULT_STEP_ENV",
    "HUB_HEADER",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "REGION_HEADER",
    "RENDER_STATE",
    "ROLLOUT_HEADER",
    "SOPS_CONFIG",
    "TEMPLATE_DIR",
    "AgeKey",
    "Change",
    "ChangeOptions",
    "ChangeResult",
    "Fleet",
    "Git",
    "HasRoot",
    "RegionStamp",
    "RenderState",
    "SyncState",
    "add_catalogue_image",
    "age_recipients",
    "apply_assignments",
    "apply_change",
    "atomic_write",
    "bootstrap_owned_folders",
    "check_age_key_path",
    "check_age_recipient",
    "check_fleet_branch",
    "check_value_overrides",
    "check_yaml_text",
    "compare_revision",
    "dump_documents",
    "dump_generated",
    "dump_roundtrip",
    "encrypt_secret",
    "file_digests",
    "fleet_commit",
    "fleet_lock",
    "flux_system_folder",
    "format_validation_error",
    "holds_lock",
    "hub_notes",
    "hub_to_yaml",
    "init_fleet",
    "is_machine_local",
    "kubevc_source_from",
    "line_of",
    "literal",
    "load_hub",
    "load_profiles",
    "load_region",
    "load_rollouts",
    "load_roundtrip",
    "merge_into",
    "merge_values",
    "missing_credentials",
    "new_age_key",
    "parse_fleet_config",
    "parse_hub",
    "parse_region",
    "parse_revision",
    "parse_rollout",
    "profile",
    "profile_names",
    "read_label_files",
    "read_values_file",
    "read_yaml_file",
    "recover",
    "region_path",
    "region_to_yaml",
    "rollout_to_yaml",
    "running_rollout",
    "save_region",
    "select_regions",
    "sha256_hex",
    "sops_binary",
    "sops_files",
    "to_plain",
    "under_folders",
    "unified_diff",
]
