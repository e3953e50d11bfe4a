"""Model server runtimes and serving groups: which server answers a model, and which models share
one serving Deployment. Pure data and functions: no I/O here.

A model's ``runtime`` (region.yaml; unset = ``tfserving``) picks the server; its ``servingGroup``
(unset = the model's own name) names the Deployment that serves it. Models of one group share one
runtime, so a group is one Deployment/Service/HPA/PDB of the serving chart and one gateway backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..errors import SpecError

Runtime = Literal["tfserving", "triton", "mlserver"]
RUNTIMES: tuple[str, ...] = ("tfserving", "triton", "mlserver")
DEFAULT_RUNTIME = "tfserving"
# The gateway's backend protocol per runtime: TF Serving's PredictionService, else v2 gRPC.
RUNTIME_PROTOCOL: dict[str, str] = {"tfserving": "tfserving", "triton": "v2", "mlserver": "v2"}
# gRPC port of each runtime's Service (charts/kubevc-serving values runtimes.<r>.grpcPort).
RUNTIME_GRPC_PORT: dict[str, int] = {"tfserving": 8500, "triton": 8001, "mlserver": 8081}
# v2 tensor datatypes (the Open Inference Protocol names) a model spec may declare.
Datatype = Literal["BOOL", "UINT8", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]


class TensorSpec(BaseModel):
    """One input or output of a model (Triton's config.pbtxt, MLServer's model-settings.json)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$")]
    datatype: Datatype
    shape: Annotated[list[Annotated[int, Field(ge=-1)]], Field(min_length=1)]


def parse_tensor(text: str) -> TensorSpec:
    """``NAME:DATATYPE:DIM[,DIM...]`` (e.g. ``X:FP32:-1`` or ``image:UINT8:-1,224,224,3``)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise SpecError(f"tensor {text!r} is not NAME:DATATYPE:DIM[,DIM...] (e.g. X:FP32:-1,3)")
    name, datatype, dims = parts
    try:
        shape = [int(d) for d in dims.split(",")]
    except ValueError:
        raise SpecError(f"tensor {text!r}: dims are integers (-1 for any size)") from None
    try:
        return TensorSpec.model_validate({"name": name, "datatype": datatype.upper(), "shape": shape})
    except ValueError as exc:
        raise SpecError(f"tensor {text!r}: {str(exc).splitlines()[-1].strip()}") from None


class ServedModel(Protocol):
    """What grouping needs of a model spec (``ModelSpec``, which imports this module)."""

    @property
    def name(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def serving_runtime(self) -> str: ...


@dataclass(frozen=True)
class ServingGroup:
    """One serving Deployment: its name, runtime and the models it serves (region order)."""

    name: str
    runtime: str
    models: tuple[str, ...]


def serving_groups(models: Sequence[ServedModel], where: str) -> list[ServingGroup]:
    """The region's serving groups in model order; a group mixing runtimes is a :class:`SpecError`."""
    runtimes: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for m in models:
        group = m.group
        runtime = m.serving_runtime
        if runtimes.setdefault(group, runtime) != runtime:
            raise SpecError(
                f"{where}: models[{m.name}] runs {runtime} but serving group {group!r} runs "
                f"{runtimes[group]} (one group is one Deployment: one runtime)"
            )
        members.setdefault(group, []).append(m.name)
    return [ServingGroup(g, runtimes[g], tuple(names)) for g, names in members.items()]
