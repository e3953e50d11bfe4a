"""The ``schema`` check: kubernetes-validate's JSON schemas (strict) for every core object."""

from __future__ import annotations

import re
from typing import Any

KUBE_VERSION = "1.32.0"


class Schemas:
    """kubernetes-validate's strict schemas, each file read and its validator built once.

    ``kubernetes_validate.validate`` re-reads the kind's schema and the whole ``_definitions.json``
    (megabytes of JSON) on every call; this does the same lookups once per (kind, apiVersion) and
    raises the same exceptions (``SchemaNotFoundError``, ``InvalidSchemaError``,
    ``jsonschema.ValidationError``).
    """

    def __init__(self, desired_version: str) -> None:
        # kubernetes-validate, jsonschema and referencing take long to import and only this check
        # needs them: imported when the first object is checked, not when kubevc-gen starts
        from kubernetes_validate import utils as kv

        self._kv = kv
        desired = desired_version.removeprefix("v")
        if kv.major_minor(desired) > kv.latest_version():
            raise kv.VersionNotSupportedError(version=kv.major_minor(desired))
        self.desired = desired
        self.version = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(desired)][-1]
        self.schema_dir = f"v{self.version}-local-strict"
        self._defs: Any = None
        self._validators: dict[tuple[str, str], Any] = {}

    def validator(self, kind: str, api_version: str) -> Any:
        key = (kind, api_version)
        found = self._validators.get(key)
        if found is None:
            try:
                found = self._build(kind, api_version)
            except (self._kv.SchemaNotFoundError, self._kv.InvalidSchemaError) as exc:
                found = exc
            self._validators[key] = found
        if isinstance(found, Exception):
            raise found
        return found

    def _build(self, kind: str, api_version: str) -> Any:
        # slow imports, only for this check (see __init__)
        import jsonschema
        from referencing import Registry, Resource

        kv = self._kv
        group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        try:
            schema = kv.schema_contents(
                f"kubernetes-json-schema/{self.schema_dir}/{kind.lower()}-{group}.json", self.desired
            )
        except FileNotFoundError:
            raise kv.SchemaNotFoundError(
                version=kv.major_minor(self.desired), kind=kind, api_version=api_version
            ) from None
        if self._defs is None:
            self._defs = kv.schema_contents(
                f"kubernetes-json-schema/{self.schema_dir}/_definitions.json", self.desired
            )
        registry: Any = Resource.from_contents(schema) @ Registry()
        registry = Resource.from_contents(self._defs) @ registry
        return jsonschema.validators.Draft202012Validator(schema, registry=registry)

    def validate(self, obj: dict[str, Any]) -> None:
        self.validator(obj["kind"], obj["apiVersion"]).validate(obj)
