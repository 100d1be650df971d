"""`python -m rivulet.cli`: talk to a running Rivulet (``make run``) from the shell.

    python -m rivulet.cli nlu "play the latest album by adele"
    python -m rivulet.cli tts "Your timer is set for ten minutes." -o reply.wav
    python -m rivulet.cli asr reply.wav            # offline Recognize; --stream for StreamingRecognize
    python -m rivulet.cli chat "set a timer for ten minutes" --session me

The Riva calls go through the official ``nvidia-riva-client`` (what any Riva program would do);
``chat`` uses Rivulet's own ``rivulet.dialog.v1.Dialog`` TextTurn.
"""

from __future__ import annotations

import argparse
import wave
from pathlib import Path

import grpc

DEFAULT_SERVER = "localhost:50051"


def _auth(server: str):
    import riva.client

    return riva.client.Auth(uri=server)


def cmd_nlu(args: argparse.Namespace) -> None:
    import riva.client

    response = riva.client.NLPService(_auth(args.server)).analyze_intent(args.text)
    print(f"intent {response.intent.class_name} ({response.intent.score:.2f})  domain {response.domain_str}")
    for slot in response.slots:
        print(f"  {slot.label[0].class_name:>20}: {slot.token}  ({slot.label[0].score:.2f})")


def cmd_tts(args: argparse.Namespace) -> None:
    import riva.client

    tts = riva.client.SpeechSynthesisService(_auth(args.server))
    response = tts.synthesize(
        args.text, voice_name=args.voice or None, language_code="en-US", sample_rate_hz=args.rate
    )
    with wave.open(str(args.output), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(args.rate)
        out.writeframes(response.audio)
    print(f"wrote {args.output} ({len(response.audio) / 2 / args.rate:.2f} s at {args.rate} Hz)")


def cmd_asr(args: argparse.Namespace) -> None:
    import riva.client

    asr = riva.client.ASRService(_auth(args.server))
    with wave.open(str(args.audio), "rb") as wav:
        rate = wav.getframerate()
    config = riva.client.RecognitionConfig(
        encoding=riva.client.AudioEncoding.LINEAR_PCM,
        sample_rate_hertz=rate,
        language_code="en-US",
        max_alternatives=1,
        enable_word_time_offsets=True,
        verbatim_transcripts=True,
    )
    if not args.stream:
        response = asr.offline_recognize(args.audio.read_bytes(), config)
        for result in response.results:
            print(result.alternatives[0].transcript)
        return
    streaming = riva.client.StreamingRecognitionConfig(config=config, interim_results=True)
    chunks = riva.client.AudioChunkFileIterator(str(args.audio), 2560)
    for response in asr.streaming_response_generator(chunks, streaming):
        for result in response.results:
            marker = "final" if result.is_final else "interim"
            print(f"[{marker}] {result.alternatives[0].transcript}")


def cmd_chat(args: argparse.Namespace) -> None:
    from rivulet.dialog.v1 import dialog_pb2, dialog_pb2_grpc

    with grpc.insecure_channel(args.server) as channel:
        stub = dialog_pb2_grpc.DialogStub(channel)
        response = stub.TextTurn(dialog_pb2.TextTurnRequest(session_id=args.session, text=args.text))
    understanding = response.understanding
    slots = ", ".join(f"{s.name}={s.value}" for s in understanding.slots)
    print(f"({understanding.intent} {understanding.score:.2f}{'; ' + slots if slots else ''})")
    for announcement in response.announcements:
        print(f"assistant (announcement): {announcement}")
    print(f"assistant: {response.reply.text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rivulet.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=DEFAULT_SERVER, help="host:port of Rivulet (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    nlu = commands.add_parser("nlu", help="AnalyzeIntent on a sentence")
    nlu.add_argument("text")
    nlu.set_defaults(run=cmd_nlu)
    tts = commands.add_parser("tts", help="Synthesize a sentence into a WAV file")
    tts.add_argument("text")
    tts.add_argument("-o", "--output", type=Path, default=Path("reply.wav"))
    tts.add_argument("--voice", default="", help="voice name (GetRivaSynthesisConfig lists them)")
    tts.add_argument("--rate", type=int, default=22050, help="sample rate in Hz")
    tts.set_defaults(run=cmd_tts)
    asr = commands.add_parser("asr", help="transcribe a 16-bit mono WAV file")
    asr.add_argument("audio", type=Path)
    asr.add_argument("--stream", action="store_true", help="use StreamingRecognize (interim results)")
    asr.set_defaults(run=cmd_asr)
    chat = commands.add_parser("chat", help="one typed turn with the assistant")
    chat.add_argument("text")
    chat.add_argument("--session", default="cli", help="conversation id (kept in Redis)")
    chat.set_defaults(run=cmd_chat)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except grpc.RpcError as exc:
        raise SystemExit(f"{exc.code().name}: {exc.details()}") from None


if __name__ == "__main__":
    main()
