"""Prometheus metrics (the names the kubevc-monitoring dashboards query)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "CONTENT_TYPE_LATEST", "Metrics"]

# The media type to hand Litestar: it appends "; charset=utf-8" to every text/* type itself, and
# prometheus_client's CONTENT_TYPE_LATEST already ends with it (the header carried it twice).
CONTENT_TYPE = CONTENT_TYPE_LATEST.partition("; charset=")[0]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: the dashboards do not use them

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """One registry per app, so several gateways can live in one process (tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "kubevc_gateway_requests",
            "Requests by model, route and HTTP status code",
            ["model", "route", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "kubevc_gateway_request_duration_seconds",
            "Time per request stage: total, decode, preprocess, backend, postprocess",
            ["model", "stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.request_bytes = Counter(
            "kubevc_gateway_request_bytes", "HTTP request body bytes received", ["model"], registry=r
        )
        self.response_bytes = Counter(
            "kubevc_gateway_response_bytes", "HTTP response body bytes sent", ["model"], registry=r
        )
        self.backend_up = Gauge(
            "kubevc_gateway_backend_up",
            "1 when the last call to the backend worked and its breaker is closed",
            ["backend"],
            registry=r,
        )
        self.model_available = Gauge(
            "kubevc_gateway_model_available",
            "1 when the backend reports the model AVAILABLE / ready",
            ["model"],
            registry=r,
        )

        self.version_label = Counter(
            "kubevc_gateway_version_label_requests",
            "Backend calls by model and the TF Serving version label they went to (canary routing)",
            ["model", "label"],
            registry=r,
        )

        self.decode_running = Gauge(
            "kubevc_gateway_decode_running", "Decode jobs running in the worker pool", registry=r
        )
        self.decode_waiting = Gauge(
            "kubevc_gateway_decode_waiting",
            "Decode jobs waiting for a worker (bounded by decodeQueue)",
            registry=r,
        )
        self.decode_pixels = Gauge(
            "kubevc_gateway_decode_pixels",
            "Decoded pixels the running jobs hold at most (bounded by maxDecodingPixels)",
            registry=r,
        )
        self.decode_rejected = Counter(
            "kubevc_gateway_decode_rejected",
            "Requests answered 503 because every decode worker was busy and the queue full",
            registry=r,
        )
        self.wire_form = Gauge(
            "kubevc_gateway_wire_form",
            "1 for the form the gateway sends each model in (encoded, uint8, float16, float32, ids)",
            ["model", "form"],
            registry=r,
        )
        self.in_flight = Gauge("kubevc_gateway_requests_in_flight", "Requests being handled", registry=r)
        self.body_bytes_in_flight = Gauge(
            "kubevc_gateway_body_bytes_in_flight",
            "Request body bytes held now, counted against maxInflightBodyBytes (declared"
            " Content-Length from the headers on, chunked bodies as they arrive)",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
