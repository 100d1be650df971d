"""Prometheus metrics of the gateway: conversations, messages, closes, and its own overhead."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from rivulet.core.metrics import LATENCY_BUCKETS

OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

OPEN_CONVERSATIONS = Gauge("rivulet_gateway_open_conversations", "WebSocket conversations open.")
CONVERSATIONS = Counter(
    "rivulet_gateway_conversations_total", "Conversations ended, by WebSocket close code.", ["code"]
)
MESSAGES = Counter(
    "rivulet_gateway_messages_total",
    "Messages forwarded (in: browser → dialog, out: dialog → browser), by kind.",
    ["direction", "kind"],
)
FORWARD_SECONDS = Histogram(
    "rivulet_gateway_forward_seconds",
    "Gateway time per message: parse + hand to gRPC (in), or gRPC message received → WebSocket "
    "write done (out).",
    ["direction"],
    buckets=OVERHEAD_BUCKETS,
)
TURN_OVERHEAD_SECONDS = Histogram(
    "rivulet_gateway_turn_overhead_seconds",
    "Gateway time spent on the outgoing messages of one turn (sum of their forward times).",
    buckets=OVERHEAD_BUCKETS,
)
FIRST_AUDIO_SECONDS = Histogram(
    "rivulet_gateway_first_audio_forward_seconds",
    "Gateway time of a turn's first reply audio chunk (gRPC received → WebSocket write done).",
    buckets=OVERHEAD_BUCKETS,
)
CONVERSATION_SECONDS = Histogram(
    "rivulet_gateway_conversation_duration_seconds",
    "Length of WebSocket conversations.",
    buckets=LATENCY_BUCKETS,
)
