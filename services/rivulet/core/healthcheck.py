"""`python -m rivulet.core.healthcheck --address host:port [--service NAME] [--tls [--ca-cert CA]]`:
exit 0 iff SERVING.

Used by container health checks; speaks the standard grpc.health.v1 protocol (over TLS with `--tls`,
trusting `--ca-cert` or the system roots). Inside a pod whose server serves TLS with a plain-text
health port (RIVULET_HEALTH_PORT set), a check of localhost:RIVULET_GRPC_PORT asks that port instead,
so container and cluster checks keep working when TLS is turned on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rivulet.core.tls import sync_channel


def check(
    address: str, service: str = "", timeout_s: float = 3.0, tls: bool = False, ca_cert: Path | None = None
) -> str:
    """The serving status name of `service` at `address`, or the gRPC error code name."""
    with sync_channel(address, ca_cert, tls) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def plain_health_address(address: str, environ: dict[str, str] | None = None) -> str:
    """`address`, or localhost:RIVULET_HEALTH_PORT when it names this pod's own TLS gRPC port."""
    environ = dict(os.environ) if environ is None else environ
    health_port, grpc_port = environ.get("RIVULET_HEALTH_PORT", ""), environ.get("RIVULET_GRPC_PORT", "50051")
    if health_port and health_port != "0" and address in (f"localhost:{grpc_port}", f"127.0.0.1:{grpc_port}"):
        return f"localhost:{health_port}"
    return address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="localhost:50051")
    parser.add_argument("--service", default="", help="service name; empty = the whole server")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument(
        "--ca-cert", type=Path, help="PEM CA that signed the server certificate (implies --tls)"
    )
    args = parser.parse_args(argv)
    address = args.address if args.tls or args.ca_cert else plain_health_address(args.address)
    status = check(address, args.service, args.timeout, args.tls, args.ca_cert)
    print(f"{args.address} {args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
