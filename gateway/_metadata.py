"""Model metadata documents: TF Serving's REST status/metadata and the Open Inference Protocol's.

Built from the backend's answer where it has one, from the gateway profile where it has none
(an Open Inference Protocol backend, or a server without GetModelMetadata).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from kubevc.gateway._errors import BackendError
from kubevc.gateway._profile import Profile
from kubevc.gateway._proto.tensorflow import meta_graph_pb2, types_pb2
from kubevc.gateway._proto.tensorflow_serving import get_model_metadata_pb2, model_pb2
from kubevc.gateway._signature import tf_dtype_enum, v2_datatype_name

__all__ = ["pb_json", "profile_signature", "tf_metadata", "v2_metadata"]


def pb_json(message: Message) -> dict[str, Any]:
    """A message as TF Serving's REST API prints it: proto field names, defaults included."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def profile_signature(profile: Profile) -> get_model_metadata_pb2.SignatureDefMap:
    """The signature of a backend without GetModelMetadata: the v2 metadata it declared, or else
    what the gateway's profile implies (its inputs with their dtypes and shapes, the outputs it
    post-processes, shape unknown)."""
    cfg = profile.cfg
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    result = get_model_metadata_pb2.SignatureDefMap()
    if profile.signature is not None:  # a v2 backend's metadata, in TF Serving's form
        for specs, infos in (
            (profile.signature.inputs, sig.inputs),
            (profile.signature.outputs, sig.outputs),
        ):
            for name, spec in specs.items():
                info = infos[name]
                info.name, info.dtype = name, tf_dtype_enum(spec.dtype)
                if spec.shape is None:
                    info.tensor_shape.unknown_rank = True
                for size in spec.shape or ():
                    info.tensor_shape.dim.add(size=size)
        result.signature_def[cfg.signature].CopyFrom(sig)
        return result
    for name, dtype in profile.dtypes.items():
        info = sig.inputs[name]
        info.name, info.dtype = name, tf_dtype_enum(dtype)
        for size in (-1, *(profile.shape or (-1,))):
            info.tensor_shape.dim.add(size=size)
    for name in profile.output_names:
        info = sig.outputs[name]
        info.name, info.dtype = name, types_pb2.DT_FLOAT
        info.tensor_shape.unknown_rank = True
    result.signature_def[cfg.signature].CopyFrom(sig)
    return result


def tf_metadata(
    profile: Profile,
    response: get_model_metadata_pb2.GetModelMetadataResponse | None,
    version: int | None,
    label: str | None,
    backend_name: str,
) -> dict[str, Any]:
    """``GET /v1/models/{name}[...]/metadata``: the backend's GetModelMetadata answer under the name
    the client knows the model by, or (``response`` None) the signature the profile implies."""
    spec = model_pb2.ModelSpec(name=profile.cfg.name)
    if response is None:
        if version is not None:
            spec.version.value = version
        elif label is not None:
            spec.version_label = label
        signatures = profile_signature(profile)
    else:
        spec.CopyFrom(response.model_spec)
        spec.name = profile.cfg.name  # the name the client knows the model by
        signatures = get_model_metadata_pb2.SignatureDefMap()
        packed = response.metadata.get("signature_def")
        if packed is None or not packed.Unpack(signatures):
            raise BackendError(f"backend {backend_name} sent no signature_def metadata")
    return {"model_spec": pb_json(spec), "metadata": {"signature_def": pb_json(signatures)}}


def v2_metadata(profile: Profile) -> dict[str, Any]:
    """``GET /v2/models/{name}``: the inputs and outputs of the gateway profile."""
    inp = profile.cfg.input
    inputs = [
        {
            "name": n,
            "datatype": v2_datatype_name(d),
            "shape": [-1, *(profile.shape or ())] if n == inp.name else [-1, -1],
        }
        for n, d in profile.dtypes.items()
    ]
    outputs = [{"name": n, "datatype": "FP32", "shape": [-1]} for n in profile.output_names]
    return {
        "name": profile.cfg.name,
        "versions": [],
        "platform": "kubevc-gateway",
        "inputs": inputs,
        "outputs": outputs,
    }
