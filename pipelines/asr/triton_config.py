"""The Triton ``config.pbtxt`` of an asr_streaming model (the contract the ASR service is written against).

Sequence batching: one Triton sequence per audio stream (START / END / CORRID controls), the
oldest-first strategy so chunks of many streams are batched into one execute(). Parameters tell the
service what the LOGPROBS columns mean and how long each frame is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

IDLE_MICROSECONDS = 60_000_000
# one `parameters { ... }` line as config_pbtxt writes it (key and value JSON-quoted)
_PARAMETER = re.compile(
    r'^parameters \{ key: "([^"]+)" value: \{ string_value: ("(?:[^"\\]|\\.)*") \} \}$', re.M
)


def _quoted(value: str) -> str:
    """A protobuf text-format string literal (JSON escaping is a valid subset for these values)."""
    return json.dumps(value, ensure_ascii=False)


def _parameter_line(key: str, value: str) -> str:
    return f"parameters {{ key: {json.dumps(key)} value: {{ string_value: {_quoted(value)} }} }}"


def config_pbtxt(model_name: str, settings: dict, architecture: str, description: str) -> str:
    parameters = {
        "rivulet_task": "asr_streaming",
        "language_code": "en-US",
        "sample_rate_hz": str(settings["sample_rate"]),
        "chunk_ms": str(settings["chunk_ms"]),
        "frame_shift_ms": str(settings["frame_shift_ms"]),
        "vocabulary": json.dumps(settings["vocabulary"], ensure_ascii=False),
        "blank_index": str(settings["blank_index"]),
        "tokenizer": settings["tokenizer"],
        "architecture": architecture,
        "description": description,
        "intra_op_num_threads": "1",
    }
    params = "".join(_parameter_line(key, value) + "\n" for key, value in parameters.items())
    return f"""# Written by `python -m pipelines.asr`; see /work/asr_contract.md and pipelines/asr/README.md.
# One request per audio chunk of one stream: AUDIO [1, N] 16 kHz float32 in [-1, 1], N >= 0.
# Response: LOGPROBS [1, T, V] (log-softmax over `vocabulary`) for the T encoder frames completed so far,
# FRAME_START [1, 1] = absolute index of the first of them. END flushes the stream and frees its state.
name: "{model_name}"
backend: "python"
max_batch_size: 64
sequence_batching {{
  max_sequence_idle_microseconds: {IDLE_MICROSECONDS}
  oldest {{
    max_candidate_sequences: 1024
    preferred_batch_size: [ 8, 16, 32, 64 ]
    max_queue_delay_microseconds: 1000
  }}
  control_input [
    {{ name: "START"  control [ {{ kind: CONTROL_SEQUENCE_START  int32_false_true: [ 0, 1 ] }} ] }},
    {{ name: "END"    control [ {{ kind: CONTROL_SEQUENCE_END    int32_false_true: [ 0, 1 ] }} ] }},
    {{ name: "CORRID" control [ {{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 }} ] }}
  ]
}}
instance_group [ {{ kind: KIND_CPU, count: 1 }} ]
input [
  {{ name: "AUDIO", data_type: TYPE_FP32, dims: [ -1 ] }}
]
output [
  {{ name: "LOGPROBS", data_type: TYPE_FP32, dims: [ -1, -1 ] }},
  {{ name: "FRAME_START", data_type: TYPE_INT64, dims: [ 1 ] }}
]
{params}"""


def parameters(config_path: Path) -> dict[str, str]:
    """The string parameters of a config.pbtxt written by `config_pbtxt` (one per line)."""
    return {key: json.loads(value) for key, value in _PARAMETER.findall(config_path.read_text())}


def set_parameter(config_path: Path, value: str, key: str = "language_model") -> None:
    """Add (or replace) `parameters { key: <key> ... }` in a config.pbtxt."""
    lines = [
        line
        for line in config_path.read_text().splitlines()
        if not ((match := _PARAMETER.match(line)) and match[1] == key)
    ]
    lines.append(_parameter_line(key, value))
    config_path.write_text("\n".join(lines) + "\n")
