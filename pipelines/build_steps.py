"""What every encoder-based model build (pipelines.nlu, pipelines.punct) does around its training:
progress lines, the machine's description for build.json, the runtime sources in the model."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path


def stage(message: str) -> None:
    print(f"==> {message}", flush=True)


def cpu_info() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def install_runtime_files(source_dir: Path, names: tuple[str, ...], version_dir: Path) -> None:
    """Copy the canonical runtime sources into `version_dir` (links copied as files: a model
    directory stands alone); a file that already is the canonical one is left alone."""
    version_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        source, target = source_dir / name, version_dir / name
        if target.exists() and os.path.samefile(source, target):
            continue
        target.unlink(missing_ok=True)
        shutil.copy2(source, target)
