"""Which models of a repository the all-in-one stack serves, and upgrading the quick NLU model.

Triton runs with explicit model control: the stack loads the models it serves, by name, and a model
that fails to load is reported at once with Triton's reason. A model directory whose task needs
trained weights (`intent_slot`, `asr_streaming`, `punctuation`: their build writes `1/build.json`)
and has none is left out with one log line saying how to build it; a model the stack needs and
cannot load is an error that names the command that builds it.

The first `make run` on a fresh machine serves a quickly trained intent model (the test profile,
minutes) so that every service answers within minutes; `NluUpgrade` then trains the full model in
a background process (lower CPU priority, its log in the run's log folder) and, when it is ready,
puts its files in the repository and asks Triton to reload the model: no restart, no lost requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("rivulet.stack")

BUILT_TASKS = {"intent_slot", "asr_streaming", "punctuation"}  # tasks whose models need trained weights
BUILD_COMMANDS = {"intent_atis": "make models", "intent_assistant": "make default-model",
                  "asr_streaming": "make asr-model", "punct_capit_en": "make default-model"}  # fmt: skip
_PARAMETER = re.compile(r'key:\s*"(?P<key>[^"]+)"\s*value:\s*\{\s*string_value:\s*"(?P<value>[^"]*)"')
VERSION = "1"
ROOT = Path(__file__).resolve().parents[2]


def config_parameters(model_dir: Path) -> dict[str, str]:
    text = (model_dir / "config.pbtxt").read_text()
    return {m["key"]: m["value"] for m in _PARAMETER.finditer(text)}


def build_info(model_dir: Path) -> dict | None:
    path = model_dir / VERSION / "build.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_built(model_dir: Path) -> bool:
    """Ready to load: a model whose task needs trained weights has its build stamp."""
    if config_parameters(model_dir).get("rivulet_task") not in BUILT_TASKS:
        return True
    return build_info(model_dir) is not None


def build_hint(name: str) -> str:
    return f"`{BUILD_COMMANDS.get(name, 'make models')}` builds it"


@dataclass(frozen=True)
class ModelPlan:
    load: list[str]
    skipped: list[str]


def plan_models(repository: Path, required: Sequence[str]) -> ModelPlan:
    """The models to load: every required one (an error if missing or not built) and every other
    built model in the repository; the rest are skipped."""
    present = sorted(p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file())
    for name in required:
        if name not in present:
            raise RuntimeError(f"model {name!r} is not in the repository {repository}: {build_hint(name)}")
        if not is_built(repository / name):
            raise RuntimeError(f"model {name!r} in {repository} has no trained weights: {build_hint(name)}")
    load = [n for n in present if n in required or is_built(repository / n)]
    return ModelPlan(load=load, skipped=[n for n in present if n not in load])


class NluUpgrade:
    """Train the full `dataset` model beside a running stack, then have Triton serve it."""

    def __init__(
        self,
        repository: Path,
        model: str,
        dataset: str,
        cache_dir: Path,
        log_file: Path,
        reload: Callable[[str], None],
    ) -> None:
        self.repository, self.model, self.dataset = repository, model, dataset
        self.cache_dir, self.log_file, self.reload = cache_dir, log_file, reload
        self.process: subprocess.Popen | None = None
        self.status = "idle"

    def needed(self) -> bool:
        info = build_info(self.repository / self.model)
        return info is not None and info.get("profile") != "full"

    def _command(self, repository: Path) -> list[str]:
        return [sys.executable, "-m", "pipelines.nlu", "build", "--dataset", self.dataset,
                "--profile", "full", "--repository", str(repository),
                "--cache-dir", str(self.cache_dir), "--no-report"]  # fmt: skip

    def progress(self) -> str:
        """The last progress line of the background build (its log), for the console."""
        try:
            tail = self.log_file.read_bytes()[-4000:].decode(errors="replace")
        except OSError:
            return ""
        lines = [x.strip() for x in re.split(r"[\r\n]", tail) if x.strip()]
        return lines[-1][:120] if lines else ""

    def _run(self, command: list[str], log_file: Path | None) -> tuple[int, str]:
        """Run one build command (blocking: called in a worker thread); output to `log_file`."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "services"), str(ROOT)]))
        if log_file is None:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            return done.returncode, done.stderr
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            self.process = subprocess.Popen(
                ["nice", "-n", "10", *command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            try:
                return self.process.wait(), ""
            finally:
                self.stop()

    async def run(self, announce: Callable[[str], None]) -> None:
        staging = self.cache_dir / "stack-staging"
        started = time.monotonic()
        announce(f"{self.model}: serving the quick model; training the full one in the background "
                 f"(about 25 min on 2 cores; progress: {self.log_file})")  # fmt: skip
        self.status = "training"
        code, _ = await asyncio.to_thread(self._run, self._command(staging), self.log_file)
        if code != 0:
            self.status = "failed"
            announce(f"{self.model}: the full model's training failed (exit {code}); still serving the "
                     f"quick model. See {self.log_file}")  # fmt: skip
            return
        # the build is in the cache now: restoring it into the served repository takes seconds
        code, errors = await asyncio.to_thread(self._run, self._command(self.repository), None)
        if code != 0:
            self.status = "failed"
            announce(f"{self.model}: could not install the full model: {errors.strip()[-300:]}")
            return
        await asyncio.to_thread(self.reload, self.model)
        self.status = "full"
        minutes = (time.monotonic() - started) / 60
        announce(f"{self.model}: the full model is trained and now served ({minutes:.0f} min)")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
