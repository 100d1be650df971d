"""The GPU variant of every model configuration (pipelines/device_config.py), checked without a GPU:

- it parses with Triton's own model-config schema (tritonclient's model_config_pb2, protobuf text
  format) and says KIND_GPU, with batch sizes Triton accepts;
- it fits each ONNX graph the model runs: the batch axis of every graph input is dynamic (so the GPU
  batch sizes can reach it), the streaming encoder's cache shapes are the ones the runtime keeps on
  the device, and the NLU TensorRT profile names the NLU graph's real inputs with their rank;
- turning it back (--device cpu) gives the committed CPU configuration byte for byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from pipelines import device_config
from pipelines.nlu.triton_config import config_pbtxt as nlu_config_pbtxt
from pipelines.tts.export import config_pbtxt as tts_config_pbtxt

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
ONNX_MODELS = ("asr_streaming", "intent_atis")  # committed configs of models that run onnxruntime


def parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def gpu_text(model: str) -> str:
    return device_config.rewrite((MODELS / model / "config.pbtxt").read_text(), "gpu")


def parameters(config: model_config_pb2.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("model", ONNX_MODELS)
def test_the_gpu_config_parses_with_tritons_schema_and_runs_on_the_gpu(model: str) -> None:
    cpu, gpu = parse((MODELS / model / "config.pbtxt").read_text()), parse(gpu_text(model))
    assert [g.kind for g in cpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    assert [g.kind for g in gpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    assert gpu.max_batch_size > cpu.max_batch_size
    assert gpu.name == cpu.name and gpu.input == cpu.input and gpu.output == cpu.output
    kept = {k: v for k, v in parameters(gpu).items() if not k.startswith("onnxruntime_")}
    assert kept == parameters(cpu), "the model's own parameters are untouched"


def test_the_streaming_asr_gpu_batches_up_to_256_streams_in_sequence_batching() -> None:
    config = parse(gpu_text("asr_streaming"))
    oldest = config.sequence_batching.oldest
    assert config.max_batch_size == 256 and list(oldest.preferred_batch_size) == [32, 64, 128, 256]
    assert max(oldest.preferred_batch_size) <= config.max_batch_size
    assert oldest.max_candidate_sequences >= config.max_batch_size
    assert [g.count for g in config.instance_group] == [1], "one instance holds every stream's state"
    assert parameters(config)["onnxruntime_tensorrt"] == "false"
    controls = {c.name for c in config.sequence_batching.control_input}
    assert controls == {"START", "END", "CORRID"}


def test_the_nlu_gpu_config_batches_dynamically_with_a_tensorrt_fp16_profile() -> None:
    config = parse(gpu_text("intent_atis"))
    batching = config.dynamic_batching
    assert list(batching.preferred_batch_size) == [16, 32, 64, 128] and config.max_batch_size == 128
    assert batching.max_queue_delay_microseconds == 2000
    p = parameters(config)
    assert p["onnxruntime_tensorrt"] == "true" and p["onnxruntime_tensorrt_fp16"] == "true"


def test_a_neural_voice_goes_to_the_gpu_and_the_engine_voices_stay_on_the_cpu(tmp_path: Path) -> None:
    neural = tmp_path / "tts_fastpitch_hifigan"
    (neural / "1").mkdir(parents=True)
    (neural / "1" / "fastpitch.onnx").write_bytes(b"graph")
    text = tts_config_pbtxt(
        "tts_fastpitch_hifigan",
        voice_name="English-US-FastPitch",
        subvoice="Female-1",
        language_code="en-US",
        sample_rate=22050,
        description="d",
    )
    (neural / "config.pbtxt").write_text(text)
    shutil.copytree(MODELS / "tts_embedded", tmp_path / "tts_embedded")
    done = device_config.rewrite_repository(tmp_path, "gpu")
    assert done["tts_embedded"].startswith("kept")
    assert (tmp_path / "tts_embedded" / "config.pbtxt").read_text() == (
        MODELS / "tts_embedded" / "config.pbtxt"
    ).read_text()
    config = parse((neural / "config.pbtxt").read_text())
    assert config.model_transaction_policy.decoupled and config.max_batch_size == 0
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (model_config_pb2.ModelInstanceGroup.KIND_GPU, 2)
    ]


@pytest.mark.parametrize("model", ONNX_MODELS)
def test_back_to_cpu_gives_the_committed_config_byte_for_byte(model: str) -> None:
    committed = (MODELS / model / "config.pbtxt").read_text()
    assert device_config.rewrite(gpu_text(model), "cpu") == committed
    assert device_config.rewrite(committed, "cpu") == committed


def test_the_nlu_writer_and_the_gpu_rewrite_agree_on_the_parts_they_share() -> None:
    written = nlu_config_pbtxt("intent_assistant", "assistant")
    assert device_config.rewrite(device_config.rewrite(written, "gpu"), "cpu") == written


def test_a_config_of_another_shape_is_refused_not_guessed() -> None:
    with pytest.raises(device_config.ConfigShapeError, match="rivulet_task"):
        device_config.rewrite('name: "x"\nmax_batch_size: 8\n', "gpu")
    broken = (MODELS / "intent_atis" / "config.pbtxt").read_text().replace("dynamic_batching { }", "")
    with pytest.raises(device_config.ConfigShapeError, match="dynamic_batching"):
        device_config.rewrite(broken, "gpu")


def test_the_repository_rewrite_does_not_write_through_hard_links(tmp_path: Path) -> None:
    shutil.copytree(MODELS / "asr_streaming", tmp_path / "repo" / "asr_streaming", ignore=lambda *_: ["lm"])
    cached = tmp_path / "cache-config.pbtxt"
    config = tmp_path / "repo" / "asr_streaming" / "config.pbtxt"
    cached.write_text(config.read_text())
    config.unlink()
    config.hardlink_to(cached)
    device_config.main(["--device", "gpu", "--repository", str(tmp_path / "repo")])
    assert "KIND_GPU" in config.read_text() and "KIND_CPU" in cached.read_text()


# ---- against the ONNX graphs ----------------------------------------------------------------------


def test_every_asr_graph_input_has_a_dynamic_batch_axis_and_the_caches_the_runtime_keeps() -> None:
    version = MODELS / "asr_streaming" / "1"
    stream = json.loads((version / "asr_stream.json").read_text())
    encoder = onnx.load(str(version / "encoder.onnx"))
    inputs = {v.name: dims(v) for v in encoder.graph.input}
    outputs = [v.name for v in encoder.graph.output]
    for name in ("audio_signal", "length", "cache_last_channel", "cache_last_time", "cache_last_channel_len"):
        assert name in inputs and isinstance(inputs[name][0], str), f"{name}: batch axis {inputs[name]}"
    # the runtime binds outputs by position: log-probs, lengths, the two next caches, the next length
    assert outputs[2:4] == ["cache_last_channel_next", "cache_last_time_next"]
    n_layers, d_model = stream["n_layers"], stream["d_model"]
    assert inputs["cache_last_channel"][1:] == [n_layers, inputs["cache_last_channel"][2], d_model]
    assert inputs["cache_last_time"][1:3] == [n_layers, d_model]
    assert inputs["audio_signal"][1] == stream["n_mels"]
    frontend = onnx.load(str(version / "frontend.onnx"))
    assert [isinstance(dims(v)[0], str) for v in frontend.graph.input] == [True]


@pytest.fixture(scope="module")
def nlu_graph(tmp_path_factory) -> onnx.ModelProto:
    """A small joint model of the real architecture, exported by the real pipeline code."""
    from transformers import BertConfig, BertModel

    from pipelines.nlu.export import export_onnx
    from pipelines.nlu.joint_model import JointIntentSlotModel

    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        )
    )
    path = tmp_path_factory.mktemp("nlu-graph") / "model.onnx"
    export_onnx(JointIntentSlotModel(encoder, num_intents=3, num_slot_tags=5, dropout=0.0), path)
    return onnx.load(str(path))


def test_the_nlu_tensorrt_profile_names_the_graphs_inputs_with_their_rank(nlu_graph) -> None:
    inputs = {v.name: dims(v) for v in nlu_graph.graph.input}
    assert all(isinstance(axis, str) for shape in inputs.values() for axis in shape), inputs
    profile = device_config.nlu_profile_parameters(max_length=64)
    maxima = []
    for key in ("min", "opt", "max"):
        shapes = dict(item.split(":") for item in profile[f"onnxruntime_tensorrt_profile_{key}"].split(","))
        assert set(shapes) == set(inputs), key
        for name, shape in shapes.items():
            assert len(shape.split("x")) == len(inputs[name]), (key, name)
        maxima.append(shapes["input_ids"])
    assert maxima[2] == f"{device_config.SETTINGS['intent_slot']['gpu'].max_batch_size}x64"


def test_the_repository_rewrite_takes_the_profiles_longest_sequence_from_the_built_model(
    tmp_path: Path,
) -> None:
    model = tmp_path / "intent_atis"
    shutil.copytree(MODELS / "intent_atis", model)
    (model / "1" / "labels.json").write_text(json.dumps({"max_length": 48}))
    device_config.rewrite_repository(tmp_path, "gpu", ["intent_atis"])
    p = parameters(parse((model / "config.pbtxt").read_text()))
    assert p["onnxruntime_tensorrt_profile_max"] == "input_ids:128x48,attention_mask:128x48"
