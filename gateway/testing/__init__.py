"""kubevc.gateway.testing: what tests, demos and benchmarks need to run the gateway for real.

* :class:`TestBackend` / :func:`run_test_backend`: a real gRPC model server (TF Serving
  ``PredictionService``/``ModelService`` and Open Inference Protocol v2) on a free loopback port.
* :class:`TestModel` / :func:`default_models`: its numpy models, with the real input and output
  shapes of MobileNet, InceptionV3, YOLOv5 (rows, or NMS in the graph) and BERT.
* :func:`config_doc`, :func:`backend_doc` and the ``*_profile`` functions: gateway configuration
  documents for such models, as ``parse_config`` takes them.
* :func:`free_port`: a free TCP port for servers started as subprocesses.
* :func:`run_tritonserver` / :func:`triton_install`: the real ``tritonserver`` of PyPI's
  ``nvidia-pytriton`` serving a model repository (Python backend, CPU only).
* :func:`run_mlserver` / :class:`MLServer`: the real MLServer (``mlserver start`` of a venv where
  it is installed) serving a model folder on free loopback ports.
* :func:`write_triton_add_model` / :func:`write_mlserver_settings`: the model files those real
  servers load in tests (a Python-backend add model, an MLServer ``model-settings.json``).
* :func:`gateway_process`, :func:`memory_use`, :func:`png_bomb`, :func:`multipart`: the gateway as
  a process of its own with its memory read from ``/proc``, and the bodies that attack it.
"""

from kubevc.gateway.testing._abuse import (
    GatewayProcess,
    MemoryUse,
    gateway_process,
    memory_use,
    multipart,
    png_bomb,
)
from kubevc.gateway.testing._backend import TestBackend, run_test_backend
from kubevc.gateway.testing._mlserver import MLServer, run_mlserver
from kubevc.gateway.testing._models import TestModel, default_models
from kubevc.gateway.testing._ports import free_port
from kubevc.gateway.testing._profiles import (
    backend_doc,
    classifier_profile,
    config_doc,
    detections_profile,
    tensor_profile,
    text_profile,
    yolo_profile,
)
from kubevc.gateway.testing._runtime_models import (
    triton_add_model_source,
    write_mlserver_settings,
    write_triton_add_model,
)
from kubevc.gateway.testing._triton import TritonInstall, TritonServer, run_tritonserver, triton_install

__all__ = [
    "GatewayProcess",
    "MLServer",
    "MemoryUse",
    "TestBackend",
    "TestModel",
    "TritonInstall",
    "TritonServer",
    "backend_doc",
    "classifier_profile",
    "config_doc",
    "default_models",
    "detections_profile",
    "free_port",
    "gateway_process",
    "memory_use",
    "multipart",
    "png_bomb",
    "run_mlserver",
    "run_test_backend",
    "run_tritonserver",
    "tensor_profile",
    "text_profile",
    "triton_add_model_source",
    "triton_install",
    "write_mlserver_settings",
    "write_triton_add_model",
    "yolo_profile",
]
