"""Virtualenvs for third-party Riva clients that cannot share Rivulet's (pinned, built once, cached).

Pipecat 1.14 pins soundfile~=0.13.1 (Rivulet pins 0.14.0) and LiveKit's NVIDIA plugin pulls
protobuf 7 (Rivulet and Pipecat run protobuf 6), so each lives in a virtualenv of its own,
`$RIVULET_CACHE_DIR/client-venvs/<name>-<hash of its lock file>` (default cache dir:
~/.cache/rivulet), installed from `tests/integration/clients/<name>.lock.txt` (every package pinned,
`--no-deps`) with the interpreter running the tests. A half-built one (no `.complete` marker) is
rebuilt; a changed lock file gets a new directory. Building one takes a minute or two with the
package registry reachable; afterwards it is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = ".complete"


def cache_dir() -> Path:
    return Path(os.environ.get("RIVULET_CACHE_DIR", "~/.cache/rivulet")).expanduser() / "client-venvs"


def client_python(name: str) -> Path:
    """The python of the `name` client virtualenv (`pipecat` or `livekit`), built if missing."""
    lock = HERE / f"{name}.lock.txt"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    venv = cache_dir() / f"{name}-{digest}"
    python = venv / "bin" / "python"
    if (venv / MARKER).exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-deps",
        "-r",
        str(lock),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_CONSTRAINT", "PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(pip, check=True, env=env)
    (venv / MARKER).write_text(lock.name + "\n")
    return python
