"""Export a FastPitch + HiFi-GAN pair (.nemo files) into a Triton model directory.

    python -m pipelines.tts export --fastpitch FP.nemo --hifigan HG.nemo --repository models

writes ``<repository>/<name>/``: ``config.pbtxt`` (decoupled python model, Riva voice parameters),
``1/model.py`` (pipelines/tts/triton/model.py), ``1/runtime.py``, ``1/fastpitch.onnx``,
``1/hifigan.onnx`` and ``1/tts_meta.json`` (sample rate, hop, pitch statistics, the tokenizer
vocabulary). Pitfalls handled (shared FACTS.md): HiFi-GAN's ``export()`` strips weight norm in place,
so it runs on a freshly restored copy and the .nemo file is never re-saved; NeMo is needed here
only, never at serving time. Tokenizers: NeMo's character tokenizers are exported as their
vocabulary and re-implemented in runtime.py; phoneme tokenizers need G2P at serving time, which is
not implemented yet (the export says so instead of producing a model that mispronounces).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
TRITON_TEMPLATE = HERE / "triton" / "model.py"
RUNTIME = HERE / "runtime.py"
ONNX_DEVICE = HERE.parent / "onnx_device.py"  # the providers each instance runs on (KIND_CPU / KIND_GPU)


def _tokenizer_spec(fastpitch) -> dict:
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import BaseCharsTokenizer

    vocab = fastpitch.vocab
    if not isinstance(vocab, BaseCharsTokenizer):
        raise SystemExit(
            f"{type(vocab).__name__}: only character tokenizers can be served so far (phoneme models need "
            "G2P at serving time); export a FastPitch trained with EnglishCharsTokenizer"
        )
    return {
        "type": "chars",
        "tokens": list(vocab.tokens),
        "space": vocab.space,
        "punct": list(vocab.PUNCT_LIST) if vocab.punct else [],
        "pad_with_space": bool(vocab.pad_with_space),
        "lower": True,
    }


def config_pbtxt(
    name: str,
    *,
    voice_name: str,
    subvoice: str,
    language_code: str,
    sample_rate: int,
    description: str,
    workers: int = 2,
) -> str:
    voices = {
        subvoice: {
            "sample_rate_hz": sample_rate,
            "gender": "",
            "phoneme_input": "respell",
            "engine_voice": f"fastpitch+hifigan:{name}",
        }
    }
    voices_json = json.dumps(voices).replace('"', '\\"')
    params = {
        "rivulet_task": "tts",
        "language_code": language_code,
        "voice_name": voice_name,
        "subvoices": f"{subvoice}:0",
        "voices": voices_json,
        "default_subvoice": subvoice,
        "workers": str(workers),
        "intra_op_num_threads": "1",
        "max_piece_words": "14",
        "first_piece_words": "4",
        "chunk_frames": "64",
        "first_chunk_frames": "16",
        "overlap_frames": "12",
        "description": description,
    }
    lines = [
        "# Written by `python -m pipelines.tts export`. FastPitch + HiFi-GAN (ONNX) as a decoupled",
        "# (streaming) python model; same I/O contract as models/tts_embedded (see its config.pbtxt).",
        f'name: "{name}"',
        'backend: "python"',
        "max_batch_size: 0",
        "model_transaction_policy { decoupled: true }",
        "instance_group [ { kind: KIND_CPU, count: 1 } ]",
        "input [",
        '  { name: "VOICE", data_type: TYPE_STRING, dims: [ 1 ] },',
        '  { name: "SCRIPT", data_type: TYPE_STRING, dims: [ 1 ] }',
        "]",
        "output [",
        '  { name: "AUDIO", data_type: TYPE_FP32, dims: [ -1 ] },',
        '  { name: "SAMPLE_RATE", data_type: TYPE_INT32, dims: [ 1 ] },',
        '  { name: "FINAL", data_type: TYPE_BOOL, dims: [ 1 ] }',
        "]",
    ]
    lines += [f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items()]
    return "\n".join(lines) + "\n"


def export(
    fastpitch_path: Path,
    hifigan_path: Path,
    repository: Path,
    *,
    name: str = "tts_fastpitch_hifigan",
    voice_name: str = "English-US-FastPitch",
    subvoice: str = "Female-1",
    language_code: str = "en-US",
) -> Path:
    """Export both models and write the Triton model directory; returns it."""
    import torch
    from nemo.collections.tts.models import FastPitchModel, HifiGanModel

    torch.set_num_threads(1)
    fastpitch = FastPitchModel.restore_from(str(fastpitch_path), map_location="cpu").eval()
    hifigan = HifiGanModel.restore_from(str(hifigan_path), map_location="cpu").eval()
    cfg = fastpitch.cfg
    meta = {
        "sample_rate": int(cfg.sample_rate),
        "hop_length": int(cfg.n_window_stride),
        "n_mels": int(cfg.n_mel_channels),
        "pitch_mean": float(cfg.get("pitch_mean", 212.35)),
        "pitch_std": float(cfg.get("pitch_std", 68.52)),
        "tokenizer": _tokenizer_spec(fastpitch),
        "fastpitch": Path(fastpitch_path).name,
        "hifigan": Path(hifigan_path).name,
    }
    vocoder_rate = int(hifigan.cfg.preprocessor.sample_rate)
    if vocoder_rate != meta["sample_rate"]:
        raise SystemExit(f"FastPitch runs at {meta['sample_rate']} Hz but HiFi-GAN at {vocoder_rate} Hz")
    target = Path(repository) / name
    with tempfile.TemporaryDirectory(prefix="rivulet-tts-export-", dir=Path(repository)) as tmp:
        version = Path(tmp) / name / "1"
        version.mkdir(parents=True)
        fastpitch.export(str(version / "fastpitch.onnx"))
        hifigan.export(str(version / "hifigan.onnx"))  # strips weight norm of this in-memory copy only
        (version / "tts_meta.json").write_text(json.dumps(meta, indent=1))
        shutil.copy2(TRITON_TEMPLATE, version / "model.py")
        shutil.copy2(RUNTIME, version / "runtime.py")
        shutil.copy2(ONNX_DEVICE, version / "onnx_device.py")
        description = (
            f"FastPitch ({meta['fastpitch']}) + HiFi-GAN ({meta['hifigan']}), chunked streaming vocoding"
        )
        (version.parent / "config.pbtxt").write_text(
            config_pbtxt(
                name,
                voice_name=voice_name,
                subvoice=subvoice,
                language_code=language_code,
                sample_rate=meta["sample_rate"],
                description=description,
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(version.parent), target)
    return target
