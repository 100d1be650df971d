"""Shared body of Rivulet's decoupled synthesizer models (Triton python backend).

Contract (models/tts_*/config.pbtxt): inputs ``VOICE`` (subvoice name) and ``SCRIPT`` (JSON from
``rivulet.tts.frontend``), outputs ``AUDIO`` (float32 piece), ``SAMPLE_RATE`` and ``FINAL``; the
model is decoupled: each request gets one response per piece, in order, the last flagged FINAL
(and sent with TRITONSERVER_RESPONSE_COMPLETE_FINAL). ``execute`` only parses and queues; the
``FirstAudioFirstPool`` workers synthesize and send. A cancelled request (the gRPC stream closed)
is dropped before its next piece and the drop is logged (``tts request ... cancelled after k of n
pieces``). Errors go on that request's response only.

A model.py subclasses ``SynthesizerModel`` with ``load_voices`` and ``synthesize`` and passes in
``triton_python_backend_utils`` (this module does not import it, so it is testable anywhere).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from rivulet.tts.streaming import FirstAudioFirstPool, Item, Job, script_items


class SynthesizerModel:
    """Subclasses set ``self.voices`` (subvoice → dict with ``sample_rate_hz``) in ``load``."""

    pb_utils: Any = None

    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.model_name = config.get("name", "tts")
        self.parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.voices: dict[str, dict] = json.loads(self.parameters.get("voices", "{}"))
        self.default_subvoice = self.parameters.get("default_subvoice") or next(iter(self.voices), "")
        self.max_words = int(self.parameters.get("max_piece_words", "14"))
        self.first_words = int(self.parameters.get("first_piece_words", "4"))
        self.load(args)
        self.pool = FirstAudioFirstPool(int(self.parameters.get("workers", "1")), self.synthesize)

    def load(self, args: dict) -> None:
        """Prepare engines or sessions (subclass hook)."""

    def synthesize(self, item: Item, job: Job) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def finalize(self) -> None:
        self.pool.close()

    # -- requests -----------------------------------------------------------------------------
    def _string(self, request: Any, name: str) -> str:
        tensor = self.pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise ValueError(f"missing input {name}")
        values = tensor.as_numpy().reshape(-1)
        if values.size != 1:
            raise ValueError(f"{name} must hold exactly one string (got {values.size})")
        raw = values[0]
        return raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else str(raw)

    def _job(self, request: Any) -> Job:
        pb = self.pb_utils
        sender = request.get_response_sender()
        request_id = request.request_id() or "-"
        voice = self._string(request, "VOICE") or self.default_subvoice
        if voice not in self.voices:
            raise ValueError(f"unknown voice {voice!r}; this model has {', '.join(self.voices)}")
        entries = json.loads(self._string(request, "SCRIPT"))
        if not isinstance(entries, list):
            raise ValueError("SCRIPT must be a JSON list")
        rate = int(self.voices[voice]["sample_rate_hz"])

        def send(audio: np.ndarray, final: bool) -> None:
            response = pb.InferenceResponse(
                output_tensors=[
                    pb.Tensor("AUDIO", audio.astype(np.float32, copy=False)),
                    pb.Tensor("SAMPLE_RATE", np.array([rate], dtype=np.int32)),
                    pb.Tensor("FINAL", np.array([final], dtype=bool)),
                ]
            )
            sender.send(response, flags=pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL if final else 0)

        def fail(message: str) -> None:
            pb.Logger.log_error(f"tts request {request_id}: {message}")
            sender.send(
                pb.InferenceResponse(error=pb.TritonError(message)),
                flags=pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
            )

        def on_cancel(done: int, total: int) -> None:
            pb.Logger.log_info(
                f"tts request {request_id} cancelled after {done} of {total} pieces ({self.model_name})"
            )
            try:
                sender.send(flags=pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            except Exception:  # the stream is already gone: nothing to close
                pass

        items = script_items(entries, max_words=self.max_words, first_words=self.first_words)
        return Job(
            items=items,
            voice=voice,
            sample_rate=rate,
            send=send,
            fail=fail,
            cancelled=request.is_cancelled,
            on_cancel=on_cancel,
        )

    def execute(self, requests: list) -> None:
        pb = self.pb_utils
        for request in requests:
            try:
                job = self._job(request)
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                request.get_response_sender().send(
                    pb.InferenceResponse(error=pb.TritonError(f"bad request: {exc}")),
                    flags=pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                )
                continue
            self.pool.submit(job)
        return None
