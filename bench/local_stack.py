"""Triton + the NLU service as real processes on free ports, for benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rivulet.core.processes import ServiceProcess, free_port, wait_for_health
from rivulet.core.tritonserver import TritonServer


@contextlib.contextmanager
def nlu_stack(
    repository: Path, log_dir: Path, models: tuple[str, ...] = ("intent_assistant",)
) -> Iterator[str]:
    """Serve `repository` with tritonserver and run `python -m rivulet.nlu` against it; yields its address."""
    log_dir.mkdir(parents=True, exist_ok=True)
    triton = TritonServer(
        repository,
        grpc_port=free_port(),
        http_port=free_port(),
        metrics_port=free_port(),
        log_file=log_dir / "tritonserver.log",
    )
    triton.start()
    service = None
    try:
        triton.wait_ready(models, timeout_s=300)
        service = ServiceProcess(
            "rivulet.nlu", log_dir / "nlu.log", {"triton_url": triton.grpc_url, "log_level": "WARNING"}
        ).start()
        wait_for_health(service.address, timeout_s=60)
        yield service.address
    finally:
        if service:
            service.stop()
        triton.stop()


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
