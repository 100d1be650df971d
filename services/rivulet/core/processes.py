"""Local processes for tests and benchmarks: free ports, service subprocesses, health waits."""

from __future__ import annotations

import functools
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

ROOT = Path(__file__).resolve().parents[3]


_HANDED_OUT: set[int] = set()
_random = random.Random()


@functools.cache
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a server this process is about to start. Drawn below the
    kernel's ephemeral range: a port bound to 0 comes from that range, where every outgoing
    connection also takes its local port, so one could take it before the server binds it (seen
    as "Address already in use" in a clean-clone test run). Never the same port twice here."""
    low = _ephemeral_low()
    for _ in range(200):
        port = _random.randrange(max(1025, low - 12_000), low)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # the range is crowded: whatever the kernel gives
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis_server(workdir: Path, timeout_s: float = 5.0) -> tuple[subprocess.Popen, str]:
    """A private, non-persisting redis-server on a free port (tests and benches); returns the
    process and its URL once it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: run `make setup` (scripts/ensure_redis.sh installs it)"
        )
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"redis-server on port {port} did not answer within {timeout_s} s")
        time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def metric_samples(metrics_port: int) -> list[Sample]:
    """Every sample of the Prometheus metrics served on this machine's `metrics_port`, scraped now."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    return [s for family in text_string_to_metric_families(text.decode()) for s in family.samples]


def health_status(address: str, service: str = "", ca_file: Path | None = None) -> str:
    """Health of `service` at `address` (over TLS trusting `ca_file` when given)."""
    channel = (
        grpc.secure_channel(address, grpc.ssl_channel_credentials(ca_file.read_bytes()))
        if (ca_file)
        else grpc.insecure_channel(address)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
        except grpc.RpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def wait_for_health(
    address: str,
    want: str = "SERVING",
    service: str = "",
    timeout_s: float = 60.0,
    ca_file: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        status = health_status(address, service, ca_file)
        if status == want:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{address} {service or '(server)'} still {status}, wanted {want}")


def service_env(**overrides: str | int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{ROOT / 'services'}:{ROOT}"
    env.update({f"RIVULET_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


class ServiceProcess:
    """`python -m <module>` as a subprocess on a free gRPC port, logs captured to a file."""

    def __init__(
        self, module: str, log_path: Path, env: Mapping[str, str | int], tls_ca_file: Path | None = None
    ) -> None:
        self.module = module
        self.tls_ca_file = tls_ca_file  # the CA of its TLS certificate, when it serves TLS
        self.log_path = log_path
        self.port = int(env.get("grpc_port") or free_port())
        self.metrics_port = int(env.get("metrics_port") or free_port())
        self.env = service_env(**{**env, "grpc_port": self.port, "metrics_port": self.metrics_port})
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module], env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def start_serving(self, service: str = "", timeout_s: float = 60.0) -> ServiceProcess:
        """Start and wait until its health says SERVING (for `service`, or overall); on a timeout the
        process is stopped and the error carries the tail of its log."""
        self.start()
        try:
            wait_for_health(self.address, service=service, timeout_s=timeout_s, ca_file=self.tls_ca_file)
        except BaseException as exc:
            self.stop()
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"{self.module} did not become healthy:\n{self.logs()[-3000:]}") from None
            raise
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric_samples(self) -> list[Sample]:
        """Every sample of the process's Prometheus metrics, scraped now."""
        return metric_samples(self.metrics_port)

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode if self.process else 0
