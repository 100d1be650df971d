"""The streaming core of the Triton synthesizer models: scripts → pieces → audio, first audio first.

A synthesizer model receives a script (see ``rivulet.tts.frontend``) per request and streams the
audio back piece by piece (``chunking``). ``FirstAudioFirstPool`` runs the pieces of all requests
on a few worker threads and always picks, among the waiting requests, the one that has produced
the fewest pieces (ties: the oldest). A new request therefore gets its first audio after one short
piece of work even while other requests are halfway through long texts: time to first audio stays
low under load, and each request's pieces are still produced strictly in order.

Before every piece a worker asks whether the request was cancelled (the client hung up, e.g. on
barge-in); a cancelled request is dropped at once and logs how far it got.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from rivulet.tts.chunking import silence, split_text


class _ClientGone(Exception):
    """Sending a response failed: the request's stream is gone."""


@dataclass(frozen=True)
class Item:
    """One unit of work: text to speak (with its prosody) or a pause (``break_ms``)."""

    text: str = ""
    rate: float = 1.0
    pitch: float = 1.0
    break_ms: int = 0
    pause_before_ms: int = 0


def script_items(entries: list[dict], *, max_words: int = 14, first_words: int = 4) -> list[Item]:
    """Expand script entries into pieces; the pause after a piece is placed before the next one."""
    items: list[Item] = []
    pause = 0
    for entry in entries:
        if "break_ms" in entry:
            items.append(Item(break_ms=int(entry["break_ms"])))
            pause = 0
            continue
        text = str(entry.get("text", "")).strip()
        if not text:
            continue
        rate, pitch = float(entry.get("rate", 1.0)), float(entry.get("pitch", 1.0))
        first = first_words if not any(i.text for i in items) else 0
        for piece in split_text(text, max_words=max_words, first_words=first):
            items.append(Item(text=piece.text, rate=rate, pitch=pitch, pause_before_ms=pause))
            pause = piece.pause_after_ms
    return items


@dataclass(eq=False)
class Job:
    """One request: its items, where its audio goes, and how to know it was cancelled.

    ``send(audio, final)`` delivers the next piece; ``fail(message)`` ends the request with an
    error; ``cancelled()`` is polled before each piece; ``on_cancel(done, total)`` reports a drop.
    """

    items: list[Item]
    voice: str
    sample_rate: int
    send: Callable[[np.ndarray, bool], None]
    fail: Callable[[str], None]
    cancelled: Callable[[], bool] = lambda: False
    on_cancel: Callable[[int, int], None] = lambda done, total: None
    done: int = 0
    seq: int = field(default=0)


class FirstAudioFirstPool:
    """Worker threads that synthesize pieces, fewest-pieces-done request first."""

    def __init__(
        self, workers: int, synthesize: Callable[[Item, Job], np.ndarray | Iterator[np.ndarray]]
    ) -> None:
        self._synthesize = synthesize
        self._heap: list[tuple[int, int, Job]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._seq = itertools.count()
        self._threads = [
            threading.Thread(target=self._run, name=f"tts-worker-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> None:
        if not job.items:
            job.send(np.zeros(0, dtype=np.float32), True)
            return
        job.seq = next(self._seq)
        with self._cond:
            heapq.heappush(self._heap, (job.done, job.seq, job))
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _next(self) -> Job | None:
        with self._cond:
            while not self._heap and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            return heapq.heappop(self._heap)[2]

    def _run(self) -> None:
        while (job := self._next()) is not None:
            if job.cancelled():
                job.on_cancel(job.done, len(job.items))
                continue
            item = job.items[job.done]
            last_piece = job.done + 1 == len(job.items)
            try:
                if not self._speak(job, item, last_piece):
                    job.on_cancel(job.done, len(job.items))
                    continue
            except _ClientGone:
                job.on_cancel(job.done, len(job.items))
                continue
            except Exception as exc:  # one bad piece fails its request only
                job.fail(f"synthesis failed: {exc}")
                continue
            job.done += 1
            if not last_piece:
                with self._cond:
                    heapq.heappush(self._heap, (job.done, job.seq, job))
                    self._cond.notify()

    def _speak(self, job: Job, item: Item, last_piece: bool) -> bool:
        """Synthesize and send one item; False when the job was cancelled between its chunks.

        A synthesizer returns the item's audio at once (an array) or chunk by chunk (an iterator,
        e.g. streaming vocoding); chunks are sent as they come and the job is closed with an empty
        final response after the last one.
        """
        result = self.render(item, job)
        if isinstance(result, np.ndarray):
            self._send(job, result, last_piece)
            return True
        lead = silence(item.pause_before_ms, job.sample_rate) if item.text else np.zeros(0, np.float32)
        for chunk in result:
            if job.cancelled():
                return False
            if lead.size:
                chunk, lead = np.concatenate([lead, chunk]), lead[:0]
            self._send(job, chunk.astype(np.float32, copy=False), False)
        if last_piece:
            self._send(job, lead, True)
        return True

    @staticmethod
    def _send(job: Job, audio: np.ndarray, final: bool) -> None:
        try:
            job.send(audio, final)
        except Exception as exc:  # the client is gone; treat as cancelled
            raise _ClientGone() from exc

    def render(self, item: Item, job: Job) -> np.ndarray | Iterator[np.ndarray]:
        """The audio of one item at the job's sample rate, led by the pause that precedes it."""
        if item.break_ms or not item.text:
            return silence(item.break_ms, job.sample_rate)
        audio = self._synthesize(item, job)
        if not isinstance(audio, np.ndarray):
            return audio
        if item.pause_before_ms:
            audio = np.concatenate([silence(item.pause_before_ms, job.sample_rate), audio])
        return audio.astype(np.float32, copy=False)
