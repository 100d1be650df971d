"""Is there a GPU onnxruntime can use? The machine, the libraries, and a clear refusal when not."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from pipelines import onnx_device


class NoGpuError(RuntimeError):
    """No GPU that onnxruntime can run on: nothing is measured, the report says why."""


@dataclass
class Environment:
    python: str
    machine: str
    onnxruntime: str
    providers: list[str]
    gpu: str = ""
    driver: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def nvidia_smi() -> tuple[str, str]:
    """(GPU name, driver version) from nvidia-smi, or empty strings."""
    if not shutil.which("nvidia-smi"):
        return "", ""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "", ""
    name, _, driver = out.splitlines()[0].partition(",") if out else ("", "", "")
    return name.strip(), driver.strip()


def describe() -> Environment:
    import onnxruntime as ort

    gpu, driver = nvidia_smi()
    return Environment(
        python=sys.version.split()[0],
        machine=f"{platform.machine()}, {platform.node()}",
        onnxruntime=ort.__version__,
        providers=ort.get_available_providers(),
        gpu=gpu,
        driver=driver,
    )


def require_gpu(env: Environment, probe_model: str) -> None:
    """Raise NoGpuError unless onnxruntime really runs a graph with the CUDA provider."""
    if onnx_device.CUDA not in env.providers:
        raise NoGpuError(
            f"onnxruntime {env.onnxruntime} has no {onnx_device.CUDA} (providers: {env.providers}); "
            f"nvidia-smi: {env.gpu or 'no GPU found'}. Install onnxruntime-gpu matching the CUDA here "
            "(see bench/gpu_check/__main__.py) and run again."
        )
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)  # onnxruntime >= 1.21: CUDA / cuDNN from the nvidia-* wheels
    if preload is not None:
        try:
            preload()
            env.notes.append("onnxruntime.preload_dlls() loaded the CUDA and cuDNN libraries")
        except Exception as error:  # the provider may still find system libraries
            env.notes.append(f"onnxruntime.preload_dlls() failed: {error}")
    try:  # torch's CUDA wheels load cuBLAS, cuDNN, ... process-wide: the CUDA provider then finds them
        import torch  # noqa: F401
    except ImportError:
        pass
    session = onnx_device.create_session(probe_model, ort.SessionOptions(), onnx_device.Placement(kind="GPU"))
    if session.get_providers()[0] != onnx_device.CUDA:
        raise NoGpuError(
            f"onnxruntime lists {onnx_device.CUDA} but a session fell back to {session.get_providers()} "
            "(CUDA or cuDNN libraries missing or not matching: see onnxruntime's log above)."
        )
