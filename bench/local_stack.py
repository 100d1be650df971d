"""Triton + one Rivulet service as real processes on free ports, for benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rivulet.core.processes import ServiceProcess, free_port, wait_for_health
from rivulet.core.tritonserver import TritonServer


@contextlib.contextmanager
def service_stack(
    module: str,
    repository: Path,
    log_dir: Path,
    models: tuple[str, ...],
    *,
    grpc_service: str = "",
    settings: dict[str, str | int] | None = None,
    only_these_models: bool = False,
) -> Iterator[str]:
    """Serve `repository` with tritonserver and run `python -m <module>` against it; yields its address.

    `only_these_models` loads just `models` (Triton's explicit model control) so a benchmark of one
    service does not share the CPU with the other models of the repository."""
    service = None
    with serving_triton(repository, log_dir, models, only_these_models=only_these_models) as triton:
        try:
            env = {"triton_url": triton.grpc_url, "log_level": "WARNING", **(settings or {})}
            if module == "rivulet.asr":  # language models are read from the repository Triton serves
                env.setdefault("asr_model_repository", str(repository))
            service = ServiceProcess(module, log_dir / f"{module.rsplit('.', 1)[-1]}.log", env).start()
            wait_for_health(service.address, service=grpc_service, timeout_s=60)
            yield service.address
        finally:
            if service:
                service.stop()


@contextlib.contextmanager
def serving_triton(
    repository: Path,
    log_dir: Path,
    models: tuple[str, ...],
    *,
    only_these_models: bool = False,
    timeout_s: float = 300,
) -> Iterator[TritonServer]:
    """tritonserver on free ports serving `repository` (only `models` with `only_these_models`),
    ready for `models`; stopped on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    extra_args = ["--model-control-mode=explicit", *(f"--load-model={m}" for m in models)]
    triton = TritonServer(
        repository,
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_file=log_dir / "tritonserver.log",
        extra_args=extra_args if only_these_models else (),
    )
    triton.start()
    try:
        triton.wait_ready(models, timeout_s=timeout_s)
        yield triton
    finally:
        triton.stop()


def nlu_stack(
    repository: Path, log_dir: Path, models: tuple[str, ...] = ("intent_assistant",)
) -> contextlib.AbstractContextManager[str]:
    """Triton + `python -m rivulet.nlu`; yields the service address."""
    return service_stack("rivulet.nlu", repository, log_dir, models)


@contextlib.contextmanager
def repository_copy(repository: Path, models: tuple[str, ...]) -> Iterator[Path]:
    """A scratch copy of some models of a repository (weights hard-linked), to vary their config."""
    with tempfile.TemporaryDirectory(prefix="rivulet-repo-") as tmp:
        for model in models:
            shutil.copytree(repository / model, Path(tmp) / model, copy_function=_link_or_copy)
        yield Path(tmp)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
