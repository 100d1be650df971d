"""Pipecat's NVIDIA STT and TTS services against a Riva address, run inside the Pipecat virtualenv.

Both with their default settings except `server` and `use_ssl=False`, driven through a real
Pipecat pipeline by `pipecat.tests.utils.run_test` (no transport). Usage:
`python drive_pipecat.py HOST:PORT SPEECH.wav "text to speak"`; prints one JSON object. It imports
nothing from Rivulet: the Pipecat venv cannot hold Rivulet's pinned packages.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave

from pipecat.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.nvidia.stt import NvidiaSTTService
from pipecat.services.nvidia.tts import NvidiaTTSService
from pipecat.tests.utils import SleepFrame, run_test


def errors(*frame_lists) -> list[str]:
    return [str(f.error) for frames in frame_lists for f in frames if isinstance(f, ErrorFrame)]


async def stt(server: str, wav_path: str) -> dict:
    with wave.open(wav_path) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    step = rate // 50 * 2  # 20 ms of 16-bit audio, as a transport delivers it
    frames = [
        InputAudioRawFrame(audio=pcm[i : i + step], sample_rate=rate, num_channels=1)
        for i in range(0, len(pcm), step)
    ]
    down, up = await run_test(
        NvidiaSTTService(server=server, use_ssl=False),
        frames_to_send=[*frames, SleepFrame(sleep=3.0)],  # the final comes after the endpoint's silence
        pipeline_params=PipelineParams(audio_in_sample_rate=rate),
    )
    return {
        "finals": [f.text for f in down if isinstance(f, TranscriptionFrame)],
        "interims": [f.text for f in down if isinstance(f, InterimTranscriptionFrame)],
        "errors": errors(down, up),
    }


async def tts(server: str, text: str) -> dict:
    started = time.perf_counter()
    service = NvidiaTTSService(server=server, use_ssl=False)
    down, up = await run_test(service, frames_to_send=[TTSSpeakFrame(text=text), SleepFrame(sleep=2.0)])
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    return {
        "voice": service._settings.voice,
        "audio_bytes": sum(len(f.audio) for f in audio),
        "sample_rates": sorted({f.sample_rate for f in audio}),
        "errors": errors(down, up),
        "seconds": time.perf_counter() - started,
    }


async def main(server: str, wav_path: str, text: str) -> None:
    print(json.dumps({"stt": await stt(server, wav_path), "tts": await tts(server, text)}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
