"""The data model: pydantic models of everything an operator writes, and nothing that does I/O.

Regions (``regions/<r>/region.yaml``), the fleet config (``kubevc-fleet.yaml``), the monitoring
hub (``hub/hub.yaml``), model profiles (``generator/profiles/*.yaml``) and the Flux objects the
renderer emits (:mod:`kubevc.generator.spec.flux`). Reading and writing the files is
:mod:`kubevc.generator.repo`'s job; this layer imports only :mod:`kubevc.generator.errors`.
"""

from . import flux
from ._hub import (
    CREDENTIALS_SECRET,
    HUB_FILE,
    HUB_NAME,
    REMOTE_WRITE_PATH,
    HubSpec,
    check_hub_against_regions,
)
from ._images import (
    ARCH_PLATFORM,
    BUILTIN_IMAGES,
    PLATFORMS,
    RUNTIME_WORKLOADS,
    WORKLOAD_CHART,
    WORKLOADS,
    ImageCatalogue,
    ImageSpec,
    RegionImages,
    image_problems,
    parse_image_reference,
    pick_image,
)
from ._names import DNS1123_LABEL, LABEL_VALUE, check_label_value, check_name
from ._notifications import NOTIFICATIONS_NS, NotificationTarget, ProviderType
from ._profiles import (
    BASE_PATH_PLACEHOLDER,
    PROFILES_DIR,
    Profile,
    ProfileInput,
    ProfileOutput,
    gateway_model,
    pick_profile,
    shipped_profile_names,
)
from ._region import (
    DEFAULT_CIDRS,
    FLEET_MARKER,
    FleetConfig,
    GitSpec,
    IscsiStorage,
    ModelSpec,
    NfsStorage,
    NodeSpec,
    RegionSpec,
    StorageSpec,
)
from ._runtimes import (
    DEFAULT_RUNTIME,
    RUNTIME_GRPC_PORT,
    RUNTIME_PROTOCOL,
    RUNTIMES,
    ServingGroup,
    TensorSpec,
    parse_tensor,
    serving_groups,
)
from ._safety import URL_WITH_USERINFO, check_git_url, check_node_host, redact_url, url_has_credentials
from ._schema import fields_at, resolve_key
from ._secrets import SOPS_SUFFIX, check_secret_key, secret_file, secret_manifest, secret_resource
from ._selector import Requirement, Selector, check_label, parse_label_changes, parse_selector
from ._values import KPS_ALLOWED_KEYS, KPS_CHART, VALUES_CHARTS, deep_merge, kps_key_allowed, leaf_paths

__all__ = [
    "ARCH_PLATFORM",
    "BASE_PATH_PLACEHOLDER",
    "BUILTIN_IMAGES",
    "CREDENTIALS_SECRET",
    "DEFAULT_CIDRS",
    "DNS1123_LABEL",
    "FLEET_MARKER",
    "HUB_FILE",
    "HUB_NAME",
    "KPS_ALLOWED_KEYS",
    "KPS_CHART",
    "LABEL_VALUE",
    "NOTIFICATIONS_NS",
    "PLATFORMS",
    "PROFILES_DIR",
    "REMOTE_WRITE_PATH",
    "RUNTIME_WORKLOADS",
    "SOPS_SUFFIX",
    "URL_WITH_USERINFO",
    "DEFAULT_RUNTIME",
    "RUNTIMES",
    "RUNTIME_GRPC_PORT",
    "RUNTIME_PROTOCOL",
    "VALUES_CHARTS",
    "WORKLOADS",
    "WORKLOAD_CHART",
    "FleetConfig",
    "GitSpec",
    "HubSpec",
    "ImageCatalogue",
    "ImageSpec",
    "IscsiStorage",
    "ModelSpec",
    "NfsStorage",
    "NodeSpec",
    "NotificationTarget",
    "Profile",
    "ProfileInput",
    "ProfileOutput",
    "ProviderType",
    "RegionImages",
    "RegionSpec",
    "Requirement",
    "Selector",
    "ServingGroup",
    "StorageSpec",
    "TensorSpec",
    "check_git_url",
    "check_hub_against_regions",
    "check_label",
    "check_label_value",
    "check_name",
    "check_node_host",
    "check_secret_key",
    "deep_merge",
    "fields_at",
    "flux",
    "gateway_model",
    "image_problems",
    "kps_key_allowed",
    "leaf_paths",
    "parse_image_reference",
    "parse_label_changes",
    "parse_selector",
    "parse_tensor",
    "pick_image",
    "pick_profile",
    "redact_url",
    "resolve_key",
    "secret_file",
    "secret_manifest",
    "secret_resource",
    "serving_groups",
    "shipped_profile_names",
    "url_has_credentials",
]
