"""One audio stream as one Triton sequence of the streaming acoustic model.

The model keeps each stream's front-end and encoder caches, keyed by the sequence's correlation
id (CORRID). A `TritonSequence` sends START with the first request and END with the last; if a
stream ends any other way (client gone, bad input, an error) `SequenceReleaser.release` sends an
END request with no audio from a task the service owns, so the model frees the state at once
instead of holding it until Triton's idle timeout.

A stream that sends nothing for longer than that timeout (the model's
`max_sequence_idle_microseconds`, 60 s: a user who paused) finds its sequence gone: Triton answers
its next request with INVALID_ARGUMENT ("must specify the START flag"). The stream then goes on as
a fresh sequence (the model's caches of a minute ago are not worth keeping), its frames numbered on
from where the audio is.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import numpy as np

from rivulet.asr.metrics import OPEN_SEQUENCES, SEQUENCES_RELEASED
from rivulet.core.errors import RivuletError
from rivulet.core.triton import TritonClient

log = logging.getLogger(__name__)

OUTPUTS = ("LOGPROBS", "FRAME_START")
# Triton's answer to a request of a sequence it no longer holds (evicted after its idle timeout)
EXPIRED = "must specify the START flag"


def new_correlation_id() -> int:
    """A random non-zero 63-bit id: unique across streams and across service replicas."""
    return secrets.randbits(63) | 1


class TritonSequence:
    def __init__(
        self, triton: TritonClient, model: str, request_id: str = "", frame_samples: int = 0
    ) -> None:
        """`frame_samples`: samples per output frame, to number frames on across a restart."""
        self.triton = triton
        self.model = model
        self.request_id = request_id
        self.frame_samples = frame_samples
        self.correlation_id = new_correlation_id()
        self.started = False
        self.ended = False
        self.restarts = 0  # sequences Triton dropped after its idle timeout, started afresh
        self._samples = 0  # samples sent so far
        self._first_frame = 0  # the frame of the current sequence's first sample

    @property
    def open(self) -> bool:
        return self.started and not self.ended

    async def send(self, samples: np.ndarray, *, end: bool = False) -> tuple[np.ndarray, int]:
        """Send mono float32 samples (any count, 0 allowed); returns (log-probs [T, V], first frame)."""
        start = not self.started
        if start:
            self.started = True
            OPEN_SEQUENCES.inc()
        if end:
            self.ended = True  # whatever happens next, this stream sends nothing more
        try:
            try:
                outputs = await self._infer(samples, start, end)
            except RivuletError as exc:
                if start or EXPIRED not in exc.message:
                    raise
                outputs = await self._restart(samples, end)
        finally:
            if end:
                OPEN_SEQUENCES.dec()
                SEQUENCES_RELEASED.labels("end").inc()
        frame_start = self._first_frame + int(np.asarray(outputs["FRAME_START"]).reshape(-1)[0])
        self._samples += samples.size
        logprobs = outputs["LOGPROBS"]
        logprobs = logprobs[0] if logprobs.ndim == 3 else logprobs
        return logprobs, frame_start

    async def _infer(self, samples: np.ndarray, start: bool, end: bool) -> dict[str, np.ndarray]:
        return await self.triton.infer(
            self.model,
            {"AUDIO": samples.astype(np.float32, copy=False).reshape(1, -1)},
            OUTPUTS,
            sequence_id=self.correlation_id,
            sequence_start=start,
            sequence_end=end,
            request_id=self.request_id,
        )

    async def _restart(self, samples: np.ndarray, end: bool) -> dict[str, np.ndarray]:
        """Triton dropped the sequence (idle past its timeout): send `samples` as the first request
        of a new one, whose frames are numbered on from the audio sent so far."""
        log.info(
            "Triton sequence %d of %s expired (idle past the model's timeout): starting afresh",
            self.correlation_id,
            self.model,
        )
        SEQUENCES_RELEASED.labels("expired").inc()
        self.correlation_id = new_correlation_id()
        self.restarts += 1
        self._first_frame = self._samples // self.frame_samples if self.frame_samples else 0
        return await self._infer(samples, True, end)


class SequenceReleaser:
    """Ends abandoned sequences in tasks it owns; `close` waits for them (service shutdown)."""

    def __init__(self, triton: TritonClient) -> None:
        self.triton = triton
        self._tasks: set[asyncio.Task] = set()

    def release(self, sequence: TritonSequence) -> None:
        if not sequence.open:
            return
        sequence.ended = True
        task = asyncio.get_running_loop().create_task(self._end(sequence), name="asr-release")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end(self, sequence: TritonSequence) -> None:
        reason = "cancelled"
        try:
            await self.triton.infer(
                sequence.model,
                {"AUDIO": np.zeros((1, 0), dtype=np.float32)},
                OUTPUTS,
                sequence_id=sequence.correlation_id,
                sequence_start=False,
                sequence_end=True,
                request_id=sequence.request_id,
            )
        except RivuletError as exc:
            reason = "release_failed"
            log.warning(
                "could not end Triton sequence %d (%s); Triton evicts it after its idle timeout",
                sequence.correlation_id,
                exc.message,
            )
        finally:
            OPEN_SEQUENCES.dec()
            SEQUENCES_RELEASED.labels(reason).inc()

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
