"""`python -m rivulet.stack`: the whole stack on one machine (what `make run` starts).

Starts the real tritonserver on the model repository, checks Redis, and serves the Riva services
(ASR, NLU, TTS) and Rivulet's dialog manager on one address (default 0.0.0.0:50051), as Riva's own
server does. The dialog manager reaches ASR, NLU and TTS through that same address; the gateway
serves the voice-assistant web app (default http://localhost:8080) in front of the dialog manager.
Ctrl-C or SIGTERM drains in-flight RPCs, then stops Triton.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from pydantic import Field, SecretStr
from rich.console import Console
from rich.table import Table

from rivulet.asr.service import AsrService
from rivulet.asr.settings import AsrSettings
from rivulet.core.apikeys import new_key
from rivulet.core.localca import create_local_certificates
from rivulet.core.logs import configure_logging
from rivulet.core.redis_client import create_redis, redis_ready
from rivulet.core.server import ServerHost
from rivulet.core.tritonserver import ModelLoadError, TritonServer, cache_dir
from rivulet.dialog.service import DialogService
from rivulet.dialog.settings import DialogSettings
from rivulet.gateway.server import GatewayServer
from rivulet.gateway.settings import GatewaySettings
from rivulet.nlu.service import NluService
from rivulet.nlu.settings import NluSettings
from rivulet.stack_models import NluUpgrade, build_hint, plan_models
from rivulet.tts.service import TtsService
from rivulet.tts.settings import TtsSettings

log = logging.getLogger("rivulet.stack")


class StackSettings(NluSettings, AsrSettings, TtsSettings, DialogSettings, GatewaySettings):
    """Every service's settings plus where the embedded Triton listens."""

    triton_grpc_port: int = Field(8001, description="Port of the embedded tritonserver's gRPC endpoint.")
    triton_http_port: int = Field(8000, description="Port of its HTTP endpoint (health, metadata).")
    triton_metrics_port: int = Field(8002, description="Port of its Prometheus metrics.")
    stack_upgrade_models: bool = Field(
        False,
        description="When the repository holds the quick intent model (a fresh machine's first run), "
        "train the full one in the background and serve it when ready, without a restart (`make run` "
        "turns it on unless NLU_PROFILE=quick; off for tests and benches that start the stack).",
    )
    stack_cache_dir: Path = Field(
        default_factory=cache_dir, description="Build cache of the background training (RIVULET_CACHE_DIR)."
    )


def _table(
    settings: StackSettings, host: ServerHost, redis_ok: bool, repository: Path, app_url: str
) -> Table:
    table = Table(title="Rivulet is running", show_lines=False)
    table.add_column("component")
    table.add_column("address")
    table.add_column("what")
    names = ", ".join(n for s in host.services for n in s.service_names)
    security = ("TLS" if host.credentials else "plain text") + (", API keys" if host.auth else "")
    table.add_row("gRPC (Riva API)", f"localhost:{host.port}", f"{names} + health, reflection ({security})")
    table.add_row("voice assistant app", app_url, "the web app (gateway: WebSocket → Dialog/Converse)")
    table.add_row("metrics", f"http://localhost:{host.metrics_port}/metrics", "Prometheus")
    table.add_row("Triton gRPC", f"localhost:{settings.triton_grpc_port}", f"models from {repository}")
    table.add_row("Triton HTTP", f"http://localhost:{settings.triton_http_port}/v2", "health, model metadata")
    table.add_row(
        "Triton metrics", f"http://localhost:{settings.triton_metrics_port}/metrics", "queue/compute time"
    )
    table.add_row("Redis", settings.redis_url, "ready" if redis_ok else "NOT reachable")
    return table


def required_models(settings: StackSettings) -> list[str]:
    models = [settings.nlu_default_model, settings.asr_default_model, "tts_embedded"]
    return models + ([settings.asr_second_pass_model] if settings.asr_second_pass_model else [])


def use_local_tls(settings: StackSettings, directory: Path) -> Path:
    """TLS from a local CA in `directory` (made if missing), unless certificates are configured.
    Returns the CA file clients must trust."""
    files = create_local_certificates(directory)
    if settings.tls_cert_file is None:
        settings.tls_cert_file, settings.tls_key_file = files.server_cert, files.server_key
    return files.ca


def _secure_local_calls(settings: StackSettings) -> None:
    """The dialog calls ASR, NLU and TTS on this same server: with TLS on it must trust the server's
    certificate (and present a client one under mutual TLS), and with API keys on it needs a key,
    minted per process unless RIVULET_CLIENT_API_KEY gives one."""
    if settings.tls_cert_file is not None and "client_tls" not in settings.model_fields_set:
        settings.client_tls = True
        if settings.client_tls_ca_file is None:
            settings.client_tls_ca_file = settings.tls_client_ca_file or _ca_next_to(settings.tls_cert_file)
        if settings.tls_client_ca_file is not None and settings.client_tls_cert_file is None:
            directory = Path(settings.tls_cert_file).parent
            settings.client_tls_cert_file, settings.client_tls_key_file = (
                directory / "client.pem",
                directory / "client.key",
            )
    if settings.auth_keys_file is not None and not settings.client_api_key.get_secret_value():
        settings.client_api_key = SecretStr(new_key())


def _ca_next_to(cert: Path) -> Path | None:
    candidate = Path(cert).parent / "ca.pem"
    return candidate if candidate.exists() else None


async def run(settings: StackSettings, repository: Path, log_dir: Path) -> None:
    console = Console(width=140)
    plan = plan_models(repository, required_models(settings))
    for name in plan.skipped:
        log.info("model %s is not built, so it is not served: %s", name, build_hint(name))
    triton = TritonServer(
        repository,
        grpc_port=settings.triton_grpc_port,
        http_port=settings.triton_http_port,
        metrics_port=settings.triton_metrics_port,
        log_file=log_dir / "tritonserver.log",
        explicit_models=True,
    )
    with console.status(f"starting tritonserver, loading {', '.join(plan.load)} (log: {triton.log_file})"):
        triton.start()
        try:
            await asyncio.to_thread(triton.load_models, plan.load)
            await asyncio.to_thread(triton.wait_ready, plan.load, 60.0)
        except BaseException:
            triton.stop()
            raise
    settings.triton_url = f"127.0.0.1:{settings.triton_grpc_port}"
    if settings.asr_model_repository is None:  # the ASR reads language models from the same files
        settings.asr_model_repository = repository
    redis = create_redis(settings.redis_url)
    redis_ok = await redis_ready(redis)
    await redis.aclose()
    # The dialog manager calls ASR, NLU and TTS on this same address unless configured otherwise.
    local = f"127.0.0.1:{settings.grpc_port}"
    for field in ("dialog_asr_url", "dialog_nlu_url", "dialog_tts_url"):
        if field not in settings.model_fields_set:
            setattr(settings, field, local)
    _secure_local_calls(settings)
    services = [AsrService(settings), NluService(settings), TtsService(settings), DialogService(settings)]
    host = ServerHost(settings, services)
    if host.auth is not None and settings.client_api_key.get_secret_value():
        host.auth.keys.add_internal("stack-internal", settings.client_api_key.get_secret_value())
    upgrade = NluUpgrade(
        repository, settings.nlu_default_model, "assistant", settings.stack_cache_dir / "nlu",
        log_dir / "nlu-full-build.log", triton.load,
    )  # fmt: skip
    upgrading: asyncio.Task | None = None
    if "gateway_dialog_url" not in settings.model_fields_set:
        settings.gateway_dialog_url = local
    gateway = GatewayServer(settings)
    try:
        await host.start()
        app_url = await gateway.start()
        host.install_signal_handlers()
        console.print(_table(settings, host, redis_ok, repository, app_url))
        hint = f"python -m rivulet.cli --server localhost:{host.port}"
        console.print(
            f"Try: [bold]{hint} chat 'set a timer for ten minutes'[/], "
            f"[bold]{hint} tts 'hello there' -o hello.wav[/], [bold]{hint} asr hello.wav[/]  (Ctrl-C stops)"
        )
        if settings.stack_upgrade_models and upgrade.needed():
            upgrading = asyncio.create_task(upgrade.run(lambda m: console.print(f"[bold]NLU[/] {m}")))
        await host.wait_for_termination()
    finally:
        if upgrading:
            upgrading.cancel()
            upgrade.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await upgrading
        await gateway.stop()
        await host.stop("stack exiting")
        triton.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--log-dir", type=Path, default=Path(".run/logs"))
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="serve TLS with a local CA and certificate kept in this directory (made if missing); "
        "clients trust DIR/ca.pem",
    )
    args = parser.parse_args(argv)
    settings = StackSettings()
    configure_logging(settings.log_level, "text")
    if args.tls_dir:
        ca = use_local_tls(settings, args.tls_dir.resolve())
        log.info("TLS on: clients trust %s (riva.client.Auth(use_ssl=True, ssl_root_cert=%r))", ca, str(ca))
    try:
        asyncio.run(run(settings, args.model_repository.resolve(), args.log_dir))
    except (
        ModelLoadError,
        RuntimeError,
        TimeoutError,
        OSError,
    ) as exc:  # a message for the person at the terminal
        Console(stderr=True).print(f"[bold red]rivulet.stack: {exc}[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
