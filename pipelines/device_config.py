"""The GPU variant of a model repository's ``config.pbtxt`` files: ``KIND_GPU`` instances, GPU batch sizes.

The pipelines write the embedded default (``KIND_CPU``, batch sizes for a few CPU cores). On a GPU
cluster the model builder runs, after the builds,

    python -m pipelines.device_config --device gpu --repository /models

which rewrites each config in place (the python code then picks onnxruntime's CUDA / TensorRT
providers itself, ``onnx_device.py``). Only the lines it owns change: ``max_batch_size``, the
batcher's preferred sizes and queue delay, ``instance_group`` and the ``onnxruntime_*``
parameters, so comments and every other parameter (the ASR LM weights, the NLU domain) stay.
``--device cpu`` turns a GPU config back. A model without ONNX graphs (``tts_embedded``: speech
engines that are CPU programs) keeps its ``KIND_CPU`` instances.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class DeviceSettings:
    """What one model task gets on one device."""

    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    parameters: dict[str, str] = field(default_factory=dict)


# Per `rivulet_task` parameter. The CPU entries are what the pipelines write today.
SETTINGS: dict[str, dict[str, DeviceSettings]] = {
    # One instance holds the state of every stream it serves (caches on the GPU): one per GPU.
    # TensorRT stays off: the cache-aware graph runs at every batch size from 1 to 256, and FP16
    # caches carried over hundreds of chunks are not shown to keep the transcript.
    "asr_streaming": {
        "cpu": DeviceSettings(64, (8, 16, 32, 64), 1000),
        "gpu": DeviceSettings(
            256,
            (32, 64, 128, 256),
            2000,
            "KIND_GPU",
            1,
            {"onnxruntime_tensorrt": "false", "onnxruntime_tensorrt_fp16": "false"},
        ),
    },
    # A 6-layer MiniLM: TensorRT FP16 with engines for batch 1..128 and up to the model's max length.
    "intent_slot": {
        "cpu": DeviceSettings(64),
        "gpu": DeviceSettings(
            128,
            (16, 32, 64, 128),
            2000,
            "KIND_GPU",
            1,
            {"onnxruntime_tensorrt": "true", "onnxruntime_tensorrt_fp16": "true"},
        ),
    },
    # Whisper on CTranslate2 (no ONNX): int8 on CPU cores, float16 on the GPU, bigger batches there.
    "asr_second_pass": {
        "cpu": DeviceSettings(8, (), 2000, "KIND_CPU", 2, {"compute_type": "int8"}),
        "gpu": DeviceSettings(32, (8, 16, 32), 2000, "KIND_GPU", 1, {"compute_type": "float16"}),
    },
    # Decoupled FastPitch + HiFi-GAN (no batching): CUDA, two instances to overlap the streams.
    "tts": {
        "cpu": DeviceSettings(0, instance_count=1),
        "gpu": DeviceSettings(
            0, (), 0, "KIND_GPU", 2, {"onnxruntime_tensorrt": "false", "onnxruntime_tensorrt_fp16": "false"}
        ),
    },
}
# punct_capit_en: MiniLM layers too (input_ids / attention_mask), so the same as intent_slot
SETTINGS["punctuation"] = SETTINGS["intent_slot"]
# tasks whose graphs take input_ids / attention_mask [batch, sequence] (TensorRT profiles per max_length)
TOKEN_TASKS = ("intent_slot", "punctuation")
GPU_PARAMETER_PREFIX = "onnxruntime_"
# always rewritten (onnxruntime, or CTranslate2 for Whisper); a "tts" model only with ONNX graphs
ONNX_TASKS = ("asr_streaming", *TOKEN_TASKS, "asr_second_pass")
NLU_PROFILE = {"min": (1, 1), "opt": (32, 24), "max": (128, None)}  # None: labels.json max_length
DEFAULT_MAX_LENGTH = 128  # the NLU profile's longest sequence when no built model says otherwise

_TASK = re.compile(r'^parameters \{ key: "rivulet_task" value: \{ string_value: "([^"]+)" \} \}$', re.M)
_MAX_BATCH = re.compile(r"^max_batch_size: \d+$", re.M)
_INSTANCE_GROUP = re.compile(r"^instance_group \[ \{ kind: KIND_(CPU|GPU), count: \d+ \} \]$", re.M)
_PREFERRED = re.compile(r"preferred_batch_size: \[[\d ,]*\]")
_QUEUE_DELAY = re.compile(r"max_queue_delay_microseconds: \d+")
_DYNAMIC = re.compile(r"^dynamic_batching \{.*\}$", re.M)
_DEVICE_PARAMETER = re.compile(
    rf'^parameters \{{ key: "({GPU_PARAMETER_PREFIX}[^"]*|compute_type)" .*\n?', re.M
)


class ConfigShapeError(ValueError):
    """A config.pbtxt not in the shape the pipelines write (the rewrite refuses to guess)."""


def task_of(text: str) -> str | None:
    match = _TASK.search(text)
    return match[1] if match else None


def has_onnx_graphs(model_dir: Path) -> bool:
    return any(model_dir.glob("[0-9]*/*.onnx"))


def nlu_profile_parameters(max_length: int) -> dict[str, str]:
    """TensorRT optimization profiles for input_ids / attention_mask [batch, sequence]."""
    shapes = {}
    for key, (batch, sequence) in NLU_PROFILE.items():
        dims = f"{batch}x{sequence or max_length}"
        shapes[f"onnxruntime_tensorrt_profile_{key}"] = f"input_ids:{dims},attention_mask:{dims}"
    return shapes


def _parameter_line(key: str, value: str) -> str:
    return f"parameters {{ key: {json.dumps(key)} value: {{ string_value: {json.dumps(value)} }} }}"


def _replace_once(pattern: re.Pattern, replacement: str, text: str, what: str) -> str:
    new, count = pattern.subn(replacement, text)
    if count == 0:
        raise ConfigShapeError(f"no {what} line in the shape the pipelines write")
    return new


def rewrite(text: str, device: str, extra_parameters: dict[str, str] | None = None) -> str:
    """``text`` (a config.pbtxt a pipeline wrote) for ``device``; raises ConfigShapeError."""
    task = task_of(text)
    if task not in SETTINGS:
        raise ConfigShapeError(f"unknown rivulet_task {task!r}: no device settings")
    settings = SETTINGS[task][device]
    text = _replace_once(_MAX_BATCH, f"max_batch_size: {settings.max_batch_size}", text, "max_batch_size")
    group = f"instance_group [ {{ kind: {settings.instance_kind}, count: {settings.instance_count} }} ]"
    text = _replace_once(_INSTANCE_GROUP, group, text, "instance_group")
    if task == "asr_streaming":
        sizes = ", ".join(str(n) for n in settings.preferred_batch_sizes)
        text = _replace_once(_PREFERRED, f"preferred_batch_size: [ {sizes} ]", text, "preferred_batch_size")
        delay = f"max_queue_delay_microseconds: {settings.max_queue_delay_us}"
        text = _replace_once(_QUEUE_DELAY, delay, text, "max_queue_delay_microseconds")
    elif task in (*TOKEN_TASKS, "asr_second_pass"):
        batching = "dynamic_batching { }"
        if settings.max_queue_delay_us and not settings.preferred_batch_sizes:
            batching = f"dynamic_batching {{ max_queue_delay_microseconds: {settings.max_queue_delay_us} }}"
        if settings.preferred_batch_sizes:
            sizes = ", ".join(str(n) for n in settings.preferred_batch_sizes)
            batching = (
                f"dynamic_batching {{ preferred_batch_size: [ {sizes} ] "
                f"max_queue_delay_microseconds: {settings.max_queue_delay_us} }}"
            )
        text = _replace_once(_DYNAMIC, batching, text, "dynamic_batching")
    text = _DEVICE_PARAMETER.sub("", text)
    parameters = dict(settings.parameters)
    if device == "gpu":
        if task in TOKEN_TASKS:
            parameters.update(nlu_profile_parameters(DEFAULT_MAX_LENGTH))
        parameters.update(extra_parameters or {})
    if parameters:
        text = text.rstrip("\n") + "\n" + "".join(_parameter_line(k, v) + "\n" for k, v in parameters.items())
    return text


def extra_parameters_for(model_dir: Path, task: str) -> dict[str, str]:
    """Parameters that depend on the built model (the NLU profile's longest sequence)."""
    if task not in TOKEN_TASKS:
        return {}
    max_length = DEFAULT_MAX_LENGTH
    for labels in sorted(model_dir.glob("[0-9]*/labels.json")):
        max_length = int(json.loads(labels.read_text()).get("max_length", max_length))
    return nlu_profile_parameters(max_length)


def rewrite_repository(repository: Path, device: str, models: list[str] | None = None) -> dict[str, str]:
    """Rewrite every (or each named) model's config.pbtxt; returns model name → what was done."""
    done: dict[str, str] = {}
    names = models or sorted(p.parent.name for p in repository.glob("*/config.pbtxt"))
    for name in names:
        model_dir = repository / name
        path = model_dir / "config.pbtxt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        text = path.read_text()
        task = task_of(text)
        if task not in ONNX_TASKS and not has_onnx_graphs(model_dir):
            done[name] = "kept: no ONNX graphs (its work is not onnxruntime's)"
            continue
        new = rewrite(text, device, extra_parameters_for(model_dir, task or ""))
        if new != text:
            path.unlink()  # a hard link into the build cache must not be written through
            path.write_text(new)
        done[name] = f"{device}: {'rewritten' if new != text else 'already so'}"
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.device_config", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--device", choices=DEVICES, required=True)
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("models", nargs="*", help="model names (default: every model in the repository)")
    args = parser.parse_args(argv)
    for name, what in rewrite_repository(args.repository, args.device, args.models).items():
        print(f"{name}: {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
