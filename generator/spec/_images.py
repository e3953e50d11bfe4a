"""The image catalogue: which container image each workload runs, per CPU platform.

``kubevc-fleet.yaml`` may list images under ``images.<workload>`` (each with the platforms it is
built for); those come first, the built-in defaults below after them. A region runs, per
workload, the first image that covers *all* its node architectures, unless its own
``images.<workload>`` overrides the choice. Pure data and functions: no I/O here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..errors import SpecError

Platform = Literal["linux/amd64", "linux/arm64", "linux/arm/v7"]
PLATFORMS: tuple[str, ...] = ("linux/amd64", "linux/arm64", "linux/arm/v7")
# RegionSpec.architectures spells the Debian/k3s way; images are published per OCI platform.
ARCH_PLATFORM: dict[str, str] = {"amd64": "linux/amd64", "arm64": "linux/arm64", "armhf": "linux/arm/v7"}

Workload = Literal["serving", "gateway", "modelStorePublisher", "triton", "mlserver"]
WORKLOADS: tuple[str, ...] = ("serving", "gateway", "modelStorePublisher", "triton", "mlserver")
# Workloads only a region with a model on that runtime runs (model spec `runtime`).
RUNTIME_WORKLOADS: tuple[str, ...] = ("triton", "mlserver")
# Where each workload's image goes: (chart, path of the chart's `image` map in its values).
WORKLOAD_CHART: dict[str, tuple[str, tuple[str, ...]]] = {
    "serving": ("kubevc-serving", ("image",)),
    "gateway": ("kubevc-gateway", ("image",)),
    "modelStorePublisher": ("kubevc-model-store", ("publisher", "job", "image")),
    "triton": ("kubevc-serving", ("runtimes", "triton", "image")),
    "mlserver": ("kubevc-serving", ("runtimes", "mlserver", "image")),
}

_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_REFERENCE = re.compile(
    rf"^(?P<repo>[^\s@:]+(?::[0-9]+/[^\s@:]+)?):(?P<tag>{_TAG})(?:@(?P<digest>sha256:[a-f0-9]{{64}}))?$"
)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_assignment=True
    )


class ImageSpec(_Model):
    """One image and the platforms it is published for."""

    repository: Annotated[str, Field(min_length=1, pattern=r"^[^\s@:]+(:[0-9]+/[^\s@:]+)?$")]
    tag: Annotated[str, Field(pattern=rf"^{_TAG}$")]
    digest: Annotated[str, Field(pattern=r"^sha256:[a-f0-9]{64}$")] | None = None
    platforms: Annotated[list[Platform], Field(min_length=1)]

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    def covers(self, platforms: Sequence[str]) -> bool:
        return set(platforms) <= set(self.platforms)

    def chart_values(self) -> dict[str, Any]:
        """The chart's ``image`` map (repository, tag and, when pinned, digest)."""
        values: dict[str, Any] = {"repository": self.repository, "tag": self.tag}
        if self.digest:
            values["digest"] = self.digest
        return values


def parse_image_reference(text: str) -> tuple[str, str, str | None]:
    """``REPOSITORY:TAG[@sha256:...]`` -> (repository, tag, digest); a tag is required (never latest)."""
    match = _REFERENCE.match(text.strip())
    if not match or match.group("tag") == "latest":
        raise SpecError(
            f"image {text!r} is not REPOSITORY:TAG[@sha256:DIGEST] with a pinned tag "
            "(e.g. ghcr.io/acme/tf-serving-arm64:2.18.0)"
        )
    return match.group("repo"), match.group("tag"), match.group("digest")


class ImageCatalogue(_Model):
    """``images:`` in ``kubevc-fleet.yaml``: the operator's images, tried before the built-in ones."""

    serving: list[ImageSpec] = Field(default_factory=list)
    gateway: list[ImageSpec] = Field(default_factory=list)
    model_store_publisher: list[ImageSpec] = Field(default_factory=list)
    triton: list[ImageSpec] = Field(default_factory=list)
    mlserver: list[ImageSpec] = Field(default_factory=list)

    def configured(self, workload: str) -> list[ImageSpec]:
        images: list[ImageSpec] = getattr(self, _field(workload))
        return images

    def candidates(self, workload: str) -> list[ImageSpec]:
        """The operator's images for ``workload``, then the built-in defaults."""
        return [*self.configured(workload), *BUILTIN_IMAGES[workload]]


class RegionImages(_Model):
    """``images:`` in a region file: this region's image per workload, overriding the catalogue."""

    serving: ImageSpec | None = None
    gateway: ImageSpec | None = None
    model_store_publisher: ImageSpec | None = None
    triton: ImageSpec | None = None
    mlserver: ImageSpec | None = None

    def override(self, workload: str) -> ImageSpec | None:
        image: ImageSpec | None = getattr(self, _field(workload))
        return image


def _field(workload: str) -> str:
    if workload not in WORKLOADS:
        raise SpecError(f"unknown workload {workload!r} (workloads: {', '.join(WORKLOADS)})")
    return "model_store_publisher" if workload == "modelStorePublisher" else workload


def _package_version() -> str:
    with contextlib.suppress(PackageNotFoundError):
        return version("kubevc")
    return "0.1.0"  # a plain checkout without package metadata: the charts' appVersion


BUILTIN_IMAGES: dict[str, tuple[ImageSpec, ...]] = {
    # TensorFlow Serving's official image is published for amd64 only (charts/kubevc-serving/README.md);
    # arm64/arm regions need an image the operator names (`kubevc-gen image add serving ...`).
    "serving": (ImageSpec(repository="tensorflow/serving", tag="2.18.0", platforms=["linux/amd64"]),),
    # The kubevc gateway image, built by `make image` for linux/amd64 and linux/arm64 and pushed as
    # ghcr.io/kubevc/kubevc-gateway:<package version>; no linux/arm/v7 build (yet).
    "gateway": (
        ImageSpec(
            repository="ghcr.io/kubevc/kubevc-gateway",
            tag=_package_version(),
            platforms=["linux/amd64", "linux/arm64"],
        ),
    ),
    # The model-store publisher Job (off by default) runs busybox, published for all three platforms.
    "modelStorePublisher": (
        ImageSpec(
            repository="busybox", tag="1.37.0", platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"]
        ),
    ),
    # NVIDIA publishes Triton's NGC image for amd64 and arm64 (SBSA/Jetson builds); no arm/v7.
    "triton": (
        ImageSpec(
            repository="nvcr.io/nvidia/tritonserver",
            tag="24.08-py3",
            platforms=["linux/amd64", "linux/arm64"],
        ),
    ),
    # Seldon publishes MLServer's image for amd64 only.
    "mlserver": (ImageSpec(repository="seldonio/mlserver", tag="1.6.1", platforms=["linux/amd64"]),),
}


def region_platforms(architectures: Sequence[str]) -> list[str]:
    """The OCI platforms of a region's node architectures, in the region's order."""
    return [ARCH_PLATFORM[a] for a in architectures]


def pick_image(
    workload: str,
    architectures: Sequence[str],
    catalogue: ImageCatalogue,
    override: RegionImages | None = None,
) -> ImageSpec | None:
    """The image ``workload`` runs in a region with ``architectures``; None when nothing covers them.

    A region's own override wins when it covers the region's platforms.
    """
    wanted = region_platforms(architectures)
    own = override.override(workload) if override is not None else None
    if own is not None:
        return own if own.covers(wanted) else None
    return next((image for image in catalogue.candidates(workload) if image.covers(wanted)), None)


def image_problems(
    region: str,
    architectures: Sequence[str],
    catalogue: ImageCatalogue,
    override: RegionImages | None = None,
    runtimes: Sequence[str] = (),
) -> list[str]:
    """One line per workload of ``region`` that no image covers, each naming the command that fixes it.

    ``runtimes`` are the model runtimes the region runs: a runtime workload (Triton, MLServer) is
    checked only when it is among them.
    """
    problems: list[str] = []
    wanted = region_platforms(architectures)
    for workload in WORKLOADS:
        if workload in RUNTIME_WORKLOADS and workload not in runtimes:
            continue
        if pick_image(workload, architectures, catalogue, override) is not None:
            continue
        own = override.override(workload) if override is not None else None
        images = [own] if own is not None else catalogue.candidates(workload)
        best = max(images, key=lambda i: len(set(i.platforms) & set(wanted)))
        missing = [p for p in wanted if p not in best.platforms]
        flags = " ".join(f"--platform {p}" for p in wanted)
        where = f"images.{workload} of regions/{region}/region.yaml" if own is not None else "the catalogue"
        problems.append(
            f"region {region}: {workload}: no image in {where} runs on {', '.join(missing)} "
            f"(closest: {best.reference} for {', '.join(best.platforms)}); fix: "
            f"kubevc-gen image add {workload} REPOSITORY:TAG {flags}"
            + (f"  (or drop the override: kubevc-gen region set {region} images.{workload}=)" if own else "")
        )
    return problems
