"""One exception type that carries a precise gRPC status code and a message saying what to fix.

Services raise `RivuletError` (or the helpers below); the server interceptor turns it into the
gRPC status. Nothing else in a servicer needs to know about `context.abort`.
"""

from __future__ import annotations

import grpc


class RivuletError(Exception):
    """An error the client should see with this status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"RivuletError({self.code.name}, {self.message!r})"


def invalid_argument(message: str) -> RivuletError:
    return RivuletError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> RivuletError:
    return RivuletError(grpc.StatusCode.NOT_FOUND, message)


def unavailable(message: str) -> RivuletError:
    return RivuletError(grpc.StatusCode.UNAVAILABLE, message)


def resource_exhausted(message: str) -> RivuletError:
    return RivuletError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


def unimplemented(message: str) -> RivuletError:
    return RivuletError(grpc.StatusCode.UNIMPLEMENTED, message)
