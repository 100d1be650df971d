"""API key checks and per-key quotas, applied by the shared server interceptor to every RPC.

A key is read from the call's metadata, in the forms Riva clients send:
`authorization: Bearer <key>` (`riva.client.Auth(metadata_args=[["authorization", "Bearer <key>"]])`,
NVIDIA's hosted API convention), `api-key: <key>` or `x-api-key: <key>`. `function-id` (NVIDIA cloud
function routing) is accepted and ignored. Outcomes:

- no key → UNAUTHENTICATED, saying how to send one; an unknown key → UNAUTHENTICATED;
- a key not allowed on the service → PERMISSION_DENIED, naming the services it may call;
- over the key's request rate or concurrent-stream limit → RESOURCE_EXHAUSTED, saying which limit.

Health and reflection stay open unless configured otherwise. Quotas are per replica.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from rivulet.core.apikeys import ApiKey, KeyFile
from rivulet.core.errors import RivuletError, resource_exhausted
from rivulet.core.settings import ServiceSettings

HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICES = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")
HOW_TO_SEND = (
    "send metadata 'authorization: Bearer <key>' (riva.client.Auth(metadata_args=[['authorization', "
    "'Bearer <key>']]), or the scripts' --metadata authorization 'Bearer <key>') or 'api-key: <key>'"
)


def unauthenticated(message: str) -> RivuletError:
    return RivuletError(grpc.StatusCode.UNAUTHENTICATED, message)


def permission_denied(message: str) -> RivuletError:
    return RivuletError(grpc.StatusCode.PERMISSION_DENIED, message)


def key_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The API key a call carries, or None. Raises UNAUTHENTICATED for a malformed authorization."""
    for name, value in metadata:
        name = name.lower()
        if isinstance(value, bytes):
            continue
        if name == "authorization":
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise unauthenticated(f"'authorization' metadata must be 'Bearer <key>'; {HOW_TO_SEND}")
            return token.strip()
        if name in ("api-key", "x-api-key") and value.strip():
            return value.strip()
    return None


class _TokenBucket:
    """`rate` requests per second on average, bursts of up to two seconds' worth."""

    def __init__(self, rate: float) -> None:
        self.rate, self.capacity = rate, max(1.0, 2.0 * rate)
        self.tokens, self.updated = self.capacity, time.monotonic()

    def take(self) -> float:
        """0 when a request may go now, else the seconds until one may."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class Admission:
    """One admitted RPC; `release()` gives back its stream slot (idempotent)."""

    key: ApiKey | None
    _streams: dict[str, int] | None = None
    _released: bool = True

    def release(self) -> None:
        if not self._released and self._streams is not None and self.key is not None:
            self._released = True
            self._streams[self.key.name] -= 1


OPEN = Admission(None)


class Authenticator:
    """Checks each RPC's key and quotas. Single event loop: no locking needed."""

    def __init__(self, settings: ServiceSettings) -> None:
        assert settings.auth_keys_file is not None
        self.keys = KeyFile(settings.auth_keys_file)
        self.open_services = set()
        if settings.auth_open_health:
            self.open_services.add(HEALTH_SERVICE)
        if settings.auth_open_reflection:
            self.open_services.update(REFLECTION_SERVICES)
        self.default_max_streams = settings.auth_default_max_streams
        self.default_rate = settings.auth_default_requests_per_s
        self._buckets: dict[str, _TokenBucket] = {}
        self._streams: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Authenticator | None:
        return cls(settings) if settings.auth_keys_file is not None else None

    def is_open(self, service: str) -> bool:
        return service in self.open_services

    def admit(self, service: str, metadata: Iterable[tuple[str, str | bytes]], streaming: bool) -> Admission:
        """Admit one call to `service` or raise the RivuletError the client should get."""
        if self.is_open(service):
            return OPEN
        secret = key_from_metadata(metadata)
        if secret is None:
            raise unauthenticated(f"this server requires an API key; {HOW_TO_SEND}")
        key = self.keys.lookup(secret)
        if key is None:
            raise unauthenticated(
                "the API key sent is not valid (revoked, mistyped, or for another deployment); "
                "ask for a new one"
            )
        if not key.allows(service):
            allowed = ", ".join(sorted(key.services))
            raise permission_denied(f"API key '{key.name}' may not call {service}; it may call: {allowed}")
        rate = key.requests_per_s if key.requests_per_s is not None else self.default_rate
        if rate:
            bucket = self._buckets.get(key.name)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[key.name] = _TokenBucket(rate)
            wait = bucket.take()
            if wait:
                raise resource_exhausted(
                    f"API key '{key.name}' is over its rate of {rate:g} requests/s; retry in {wait:.2f} s"
                )
        if not streaming:
            return Admission(key)
        limit = key.max_streams if key.max_streams is not None else self.default_max_streams
        open_now = self._streams.get(key.name, 0)
        if limit and open_now >= limit:
            raise resource_exhausted(
                f"API key '{key.name}' already has {open_now} streams open, its limit; "
                "close one (or finish it) before opening another"
            )
        self._streams[key.name] = open_now + 1
        return Admission(key, self._streams, _released=False)

    def open_streams(self, name: str) -> int:
        return self._streams.get(name, 0)
