"""Prometheus metrics every service exports, and the HTTP endpoint that serves them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # fmt: skip

GRPC_REQUESTS = Counter(
    "rivulet_grpc_requests_total", "RPCs finished, by final status code.", ["service", "method", "code"]
)
GRPC_ERRORS = Counter(
    "rivulet_grpc_errors_total", "RPCs that ended with a status other than OK.", ["service", "method", "code"]
)
GRPC_LATENCY = Histogram(
    "rivulet_grpc_request_duration_seconds",
    "Time from the start of an RPC to its end (a whole stream for streaming RPCs).",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
GRPC_IN_FLIGHT = Gauge("rivulet_grpc_in_flight", "RPCs and streams in progress.", ["service", "method"])
TRITON_LATENCY = Histogram(
    "rivulet_triton_infer_duration_seconds",
    "Triton inference round trips.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
TRITON_ERRORS = Counter("rivulet_triton_errors_total", "Failed Triton calls, by reason.", ["model", "reason"])
TTS_STREAM_ENDINGS = Counter(
    "rivulet_tts_triton_streams_total",
    "Synthesis streams to Triton, by how they ended: finished (Triton ended it with every piece "
    "sent), drained (the reply was stopped early, the rest read and dropped, Triton ended it), "
    "cancelled (the client cancelled it: no end within the deadline, too many draining, or "
    "shutdown), failed (an error).",
    ["model", "ending"],
)
DEPENDENCY_READY = Gauge("rivulet_dependency_ready", "1 when a dependency is ready, else 0.", ["dependency"])


def start_metrics_server(port: int, host: str = "0.0.0.0") -> int:
    """Serve /metrics on `port` (0: a free port) and return the port bound."""
    server, _thread = start_http_server(port, addr=host)
    return server.server_address[1]
