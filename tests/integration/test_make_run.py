"""`make run` as a newcomer runs it: from a model repository in the state a clean clone leaves it.

The repository holds only tracked files (config.pbtxt and code of every model, the committed
streaming ASR weights; no intent weights, `intent_atis` never built). `make run NLU_PROFILE=quick`
takes the same path as a plain `make run` on a fresh machine (setup, the default models, the
stack with explicit model loading) with the quick intent model and no background training.
Each service answers once through `riva.client` (and the dialog a typed turn); SIGINT stops it all.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import riva.client
import soundfile

from rivulet.dialog.v1 import dialog_pb2, dialog_pb2_grpc
from tests.support import ROOT, free_port, health_status

pytestmark = pytest.mark.integration

AN4 = ROOT.parent / "shared" / "data" / "speech" / "an4_train"


def clean_clone_models(target: Path) -> Path:
    """Copy of the tracked files under models/ (what a clean clone has)."""
    tracked = subprocess.run(
        ["git", "ls-files", "models"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in tracked.stdout.split():
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest)
    return target / "models"


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout


def real_clip(text: str) -> np.ndarray:
    for line in (AN4 / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["text"] == text:
            samples, _ = soundfile.read(AN4 / row["audio_filepath"], dtype="int16")
            return samples
    raise AssertionError(f"no AN4 clip says {text!r}")


def wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(f"make run exited with {process.returncode}:\n{path.read_text()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"make run did not print {text!r} in {timeout_s:.0f} s:\n{path.read_text()[-4000:]}")


def test_make_run_from_a_clean_clone_answers_every_service(
    nlu_repository, nlu_cache_dir, redis_url, tmp_path
):
    # nlu_repository: the quick intent model is built (and cached) by the session; make restores it
    repository = clean_clone_models(tmp_path / "clone")
    cache = os.environ.get("RIVULET_CACHE_DIR") or str(tmp_path / "cache")
    if not os.environ.get("RIVULET_CACHE_DIR"):  # the session's per-run NLU cache, under this cache
        Path(cache).mkdir()
        (Path(cache) / "nlu").symlink_to(
            next(nlu_repository.parent.glob("nlu-cache*")), target_is_directory=True
        )
    port, triton_http = free_port(), free_port()
    env = dict(
        os.environ,
        RIVULET_CACHE_DIR=cache,
        RIVULET_GRPC_PORT=str(port),
        RIVULET_METRICS_PORT=str(free_port()),
        RIVULET_TRITON_GRPC_PORT=str(free_port()),
        RIVULET_TRITON_HTTP_PORT=str(triton_http),
        RIVULET_TRITON_METRICS_PORT=str(free_port()),
        RIVULET_GATEWAY_PORT=str(free_port()),
        RIVULET_REDIS_URL=redis_url,
    )
    before = git_status()
    logs = tmp_path / "logs"
    command = ["make", "run", f"MODELS={repository}", "NLU_PROFILE=quick", f"RUN_LOG_DIR={logs}"]
    output = tmp_path / "make-run.log"
    with open(output, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            wait_for_line(output, "Rivulet is running", process, timeout_s=900)
            auth = riva.client.Auth(uri=f"127.0.0.1:{port}")
            nlu = riva.client.NLPService(auth).analyze_intent("set a timer for ten minutes")
            assert nlu.intent.class_name == "SetTimer"
            punctuated = riva.client.NLPService(auth).punctuate_text("set a timer for ten minutes")
            marked = punctuated.text[0]  # punct_capit_en (the quick model also adds commas, not always right)
            assert marked[0] == "S" and marked.replace(",", "").lower().startswith(
                "set a timer for ten minutes"
            )
            config = riva.client.RecognitionConfig(
                encoding=riva.client.AudioEncoding.LINEAR_PCM, sample_rate_hertz=16000, language_code="en-US",
                max_alternatives=1, verbatim_transcripts=True,
            )  # fmt: skip
            heard = riva.client.ASRService(auth).offline_recognize(real_clip("yes").tobytes(), config)
            assert [r.alternatives[0].transcript for r in heard.results] == ["yes"]
            speech = riva.client.SpeechSynthesisService(auth).synthesize(
                "Rivulet is ready.", sample_rate_hz=16000
            )
            assert len(speech.audio) > 16000
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                turn = dialog_pb2_grpc.DialogStub(channel).TextTurn(
                    dialog_pb2.TextTurnRequest(session_id="make-run-test", text="what time is it")
                )
            assert turn.understanding.intent == "GetTime" and turn.reply.text
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            process.wait(90)
    text = output.read_text(errors="replace")
    assert "intent_atis is not built, so it is not served: `make models` builds it" in text
    assert health_status(f"127.0.0.1:{port}") == "UNAVAILABLE"  # the gRPC server is gone
    assert "successfully unloaded" in (logs / "tritonserver.log").read_text()  # Triton stopped cleanly
    assert git_status() == before, "make run changed the checkout"
