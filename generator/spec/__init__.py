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
from ._schema import fields_at, resolve_key
from ._secrets import SOPS_SUFFIX, check_secret_key, secret_file, secret_manifest, secret_resource

__all__ = [
    "BASE_PATH_PLACEHOLDER",
    "CREDENTIALS_SECRET",
    "DEFAULT_CIDRS",
    "DNS1123_LABEL",
    "FLEET_MARKER",
    "HUB_FILE",
    "HUB_NAME",
    "LABEL_VALUE",
    "NOTIFICATIONS_NS",
    "PROFILES_DIR",
    "REMOTE_WRITE_PATH",
    "SOPS_SUFFIX",
    "FleetConfig",
    "GitSpec",
    "HubSpec",
    "IscsiStorage",
    "ModelSpec",
    "NfsStorage",
    "NodeSpec",
    "NotificationTarget",
    "Profile",
    "ProfileInput",
    "ProfileOutput",
    "ProviderType",
    "RegionSpec",
    "StorageSpec",
    "check_hub_against_regions",
    "check_label_value",
    "check_name",
    "check_secret_key",
    "fields_at",
    "flux",
    "gateway_model",
    "pick_profile",
    "resolve_key",
    "secret_file",
    "secret_manifest",
    "secret_resource",
    "shipped_profile_names",
]
