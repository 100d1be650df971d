"""Run the real `tritonserver` that ships inside the `nvidia-pytriton` wheel on a model repository.

    with TritonServer(Path("models"), grpc_port=8001) as triton:   # starts, waits for readiness
        ...                                                          # stops cleanly on exit

`python -m rivulet.core.tritonserver --model-repository models` does the same in the foreground.

The wheel's server needs (see shared FACTS.md): a writable copy of its `tritonserver/` tree with the
python-backend stub for the running interpreter placed in `backends/python/`, and LD_LIBRARY_PATH
holding this interpreter's libpython directory first, then `nvidia_pytriton.libs`. Models run
with this virtualenv as their `sys.prefix`, so they import its onnxruntime and tokenizers.
The same model repository is served by NVIDIA's Triton container on a GPU cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    base = os.environ.get("RIVULET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rivulet"
    )
    return Path(base)


def _pytriton_root() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nvidia-pytriton is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def prepare_installation(dest_root: Path | None = None) -> Path:
    """A writable copy of the wheel's tritonserver tree with this Python's backend stub; made once."""
    source = _pytriton_root()
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    dest = (dest_root or cache_dir()) / f"tritonserver-{_version()}-py{py}"
    marker = dest / ".complete"
    if marker.exists():
        return dest
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    stub = source / "python_backend_stubs" / py / "triton_python_backend_stub"
    if not stub.exists():
        raise RuntimeError(f"nvidia-pytriton has no python backend stub for Python {py}")
    shutil.copy2(stub, tmp / "backends" / "python" / "triton_python_backend_stub")
    (tmp / ".complete").touch()
    with contextlib.suppress(OSError):
        tmp.rename(dest)  # another process may have won the race; either copy is complete
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nvidia-pytriton")
    except Exception:  # pragma: no cover - metadata missing only in odd installs
        return "unknown"


def server_environment() -> dict[str, str]:
    env = dict(os.environ)
    libs = [sysconfig.get_config_var("LIBDIR") or ""]
    site = _pytriton_root().parent.parent
    libs.append(str(site / "nvidia_pytriton.libs"))
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(p for p in libs if p)
    venv = Path(sys.prefix)
    if sys.prefix != sys.base_prefix:  # running inside a virtualenv: models use its packages
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    # Python-backend models may import Rivulet's own pure-python helpers (e.g. rivulet.voices).
    services = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = ":".join(p for p in (services, env.get("PYTHONPATH", "")) if p)
    return env


class ModelLoadError(RuntimeError):
    """Triton could not load a model; the message names it and gives Triton's reason."""

    def __init__(self, model: str, reason: str, log_file: Path | None = None) -> None:
        self.model, self.reason = model, reason
        where = f" (tritonserver log: {log_file})" if log_file else ""
        super().__init__(f"Triton could not load model {model!r}: {reason}{where}")


class TritonServer:
    """A tritonserver subprocess on `model_repository`, with readiness waiting and clean shutdown."""

    def __init__(
        self,
        model_repository: Path,
        *,
        grpc_port: int = 8001,
        http_port: int = 8000,
        metrics_port: int = 8002,
        log_verbose: int = 0,
        log_file: Path | None = None,
        extra_args: Sequence[str] = (),
        explicit_models: bool = False,
    ) -> None:
        self.model_repository = Path(model_repository).resolve()
        # explicit: Triton loads nothing by itself; `load_models` names what to serve, and a model
        # that fails is reported at once (default: Triton loads every model in the repository)
        self.explicit_models = explicit_models
        self.grpc_port, self.http_port, self.metrics_port = grpc_port, http_port, metrics_port
        self.log_verbose = log_verbose
        self.log_file = log_file
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self._log_handle = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self, installation: Path) -> list[str]:
        return [
            str(installation / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={installation / 'backends'}",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            f"--log-verbose={self.log_verbose}",
            "--exit-on-error=false",
            "--strict-readiness=true",
            *(["--model-control-mode=explicit"] if self.explicit_models else []),
            *self.extra_args,
        ]

    def start(self) -> TritonServer:
        if not self.model_repository.is_dir():
            raise FileNotFoundError(f"model repository {self.model_repository} does not exist")
        installation = prepare_installation()
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = open(self.log_file, "ab")
        out = self._log_handle or subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command(installation),
            env=server_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us; we stop Triton ourselves
        )
        log.info("tritonserver pid %d: grpc %d, http %d", self.process.pid, self.grpc_port, self.http_port)
        return self

    def load(self, model: str, timeout_s: float = 600.0) -> None:
        """Load (or reload, picking up new files) one model; raise ModelLoadError with Triton's reason."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/v2/repository/models/{model}/load", data=b"{}", method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s):
                return
        except urllib.error.HTTPError as exc:
            try:
                reason = json.loads(exc.read() or b"{}").get("error", "") or exc.reason
            except ValueError:
                reason = exc.reason
            raise ModelLoadError(model, str(reason), self.log_file) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ModelLoadError(model, f"tritonserver did not answer ({exc})", self.log_file) from None

    def load_models(self, models: Sequence[str], timeout_s: float = 600.0) -> None:
        """Wait for the server, then load `models` side by side; the first failure is raised at once."""
        self.wait_ready((), timeout_s)
        with ThreadPoolExecutor(max(1, len(models))) as pool:
            futures = [pool.submit(self.load, m, timeout_s) for m in models]
            for future in as_completed(futures):
                future.result()

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return 0

    def is_ready(self, models: Sequence[str] = ()) -> bool:
        if self._get("/v2/health/ready") != 200:
            return False
        return all(self._get(f"/v2/models/{m}/ready") == 200 for m in models)

    def wait_ready(self, models: Sequence[str] = (), timeout_s: float = 180.0) -> None:
        """Block until the server (and the named models) are ready; raise if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(
                    f"tritonserver exited with code {self.process.returncode}; see {self.log_file}"
                )
            if self.is_ready(models):
                return
            time.sleep(0.2)
        raise TimeoutError(f"tritonserver not ready after {timeout_s:.0f}s; see {self.log_file}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (Triton unloads models and exits), SIGKILL if it does not within `timeout_s`."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log_handle:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self) -> TritonServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a model repository with the real tritonserver.")
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--log-file", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(message)s")
    server = TritonServer(
        args.model_repository,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        log_file=args.log_file,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server.start()
    try:
        server.wait_ready()
        print(f"tritonserver ready: grpc 127.0.0.1:{args.grpc_port}, http :{args.http_port}, "
              f"metrics :{args.metrics_port} (Ctrl-C stops)", flush=True)  # fmt: skip
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
