"""LiveKit's NVIDIA STT and TTS (livekit-plugins-nvidia) against a Riva address, run inside the LiveKit
virtualenv (protobuf 7: it cannot share Rivulet's).

Both with their default settings except `server` and `use_ssl=False`, under plain asyncio (no
LiveKit server or room is needed). Usage: `python drive_livekit.py HOST:PORT SPEECH.wav "text"`;
prints one JSON object. It imports nothing from Rivulet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import wave

from livekit import rtc
from livekit.plugins import nvidia

WAIT_S = 30.0  # a NOT_FOUND in LiveKit's STT is only logged: without a deadline it would wait forever


async def stt(server: str, wav_path: str) -> dict:
    with wave.open(wav_path) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    engine = nvidia.STT(server=server, use_ssl=False)
    stream = engine.stream()
    step = rate // 50 * 2  # 20 ms frames, as a room track delivers them
    for i in range(0, len(pcm), step):
        chunk = pcm[i : i + step]
        stream.push_frame(
            rtc.AudioFrame(data=chunk, sample_rate=rate, num_channels=1, samples_per_channel=len(chunk) // 2)
        )
    stream.end_input()
    events: list[tuple[str, str]] = []

    async def collect() -> None:
        async for event in stream:
            text = event.alternatives[0].text if event.alternatives else ""
            events.append((event.type.name, text))

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), WAIT_S)
    await stream.aclose()
    return {
        "model": engine._opts.model,
        "finals": [t for kind, t in events if kind == "FINAL_TRANSCRIPT"],
        "interims": [t for kind, t in events if kind == "INTERIM_TRANSCRIPT"],
        "events": sorted({kind for kind, _ in events}),
    }


async def tts(server: str, text: str) -> dict:
    engine = nvidia.TTS(server=server, use_ssl=False)
    chunked = [event.frame async for event in engine.synthesize(text)]
    stream = engine.stream()
    stream.push_text(text)
    stream.end_input()
    streamed = [event.frame async for event in stream]
    await stream.aclose()
    return {
        "voice": engine._opts.voice,
        "synthesize_samples": sum(f.samples_per_channel for f in chunked),
        "stream_samples": sum(f.samples_per_channel for f in streamed),
        "sample_rates": sorted({f.sample_rate for f in chunked + streamed}),
    }


async def main(server: str, wav_path: str, text: str) -> None:
    print(json.dumps({"stt": await stt(server, wav_path), "tts": await tts(server, text)}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
