"""Models: the store that holds their versions, and their lifecycle in the region specs.

:mod:`._store` publishes SavedModel versions atomically to a local or remote (SSH) store;
:mod:`._lifecycle` is the promote / canary / rollback state machine on :class:`ModelSpec`.
"""

from ._lifecycle import (
    LABELS,
    check_published,
    find_model,
    labels_text,
    model_folder_of,
    model_in,
    open_region_store,
    promoted,
    regions_for,
    replace_model,
    revalidate,
    rolled_back,
    share,
    with_canary_share,
)
from ._store import (
    INCOMING_PREFIX,
    MOUNT_PATH,
    LocalStore,
    Manifest,
    ManifestEntry,
    PublishResult,
    RemoteStore,
    Store,
    build_manifest,
    check_saved_model,
    model_folder,
    open_store,
    publish,
    versions,
)

__all__ = [
    "INCOMING_PREFIX",
    "LABELS",
    "MOUNT_PATH",
    "LocalStore",
    "Manifest",
    "ManifestEntry",
    "PublishResult",
    "RemoteStore",
    "Store",
    "build_manifest",
    "check_published",
    "check_saved_model",
    "find_model",
    "labels_text",
    "model_folder",
    "model_folder_of",
    "model_in",
    "open_region_store",
    "open_store",
    "promoted",
    "publish",
    "regions_for",
    "replace_model",
    "revalidate",
    "rolled_back",
    "share",
    "versions",
    "with_canary_share",
]
