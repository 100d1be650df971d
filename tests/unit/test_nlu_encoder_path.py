"""`--encoder PATH`: any Hugging Face BERT-like directory, here a tiny random BertModel with a tiny vocab."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.nlu.cache import build_key
from pipelines.nlu.corpus import data_files
from pipelines.nlu.encoder import encoder_files
from pipelines.nlu.paths import REPO_ROOT, data_dir
from pipelines.nlu.recipes import recipe_for
from pipelines.nlu.runtime import intent_slot

pytestmark = pytest.mark.skipif(not (data_dir() / "nlu" / "snips").is_dir(), reason="shared data not found")


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "play", "the", "timer", "lights", "set", "for"]
    vocab += list(string.ascii_lowercase + string.digits) + [
        f"##{c}" for c in string.ascii_lowercase + string.digits
    ]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(path))
    return path


def test_build_with_a_tiny_encoder_exports_a_working_model(tiny_encoder: Path, tmp_path: Path) -> None:
    args = ["build", "--dataset", "assistant", "--profile", "quick", "--repository", str(tmp_path)]
    args += ["--encoder", str(tiny_encoder), "--no-cache", "--no-report"]
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT / 'services'}{os.pathsep}{REPO_ROOT}", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.nlu", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "storing build" not in done.stdout  # --no-cache
    version = tmp_path / "intent_assistant" / "1"
    info = json.loads((version / "build.json").read_text())
    assert info["encoder"] == str(tiny_encoder)
    assert len(info["key"]) == 20 and info["profile"] == "quick"
    assert info["onnx_parity_max_abs_diff"] < 1e-3
    # the per-epoch PyTorch dev scores (used to pick the epoch) decode like the runtime scoring the ONNX
    best = info["history"]["epochs"][info["history"]["best_epoch"] - 1]["dev"]
    for name, metrics in info["metrics"]["dev"].items():
        for key in ("intent_accuracy", "slot_f1", "sentence_accuracy"):
            assert abs(best[name][key] - metrics[key]) < 0.005, (name, key, best[name][key], metrics[key])

    runtime = intent_slot().IntentSlotRuntime(str(version))
    assert runtime.tokenizer.get_vocab_size() == len((tiny_encoder / "vocab.txt").read_text().split())
    [analysis] = runtime.analyze(["Set a timer for 5 minutes, please."])
    assert sorted(analysis.intents) == sorted(json.loads((version / "labels.json").read_text())["intents"])
    assert [w.text for w in analysis.words] == ["set", "a", "timer", "for", "5", "minutes", "please"]
    assert len(analysis.word_tags) == 7


def test_the_encoder_is_part_of_the_build_key(tiny_encoder: Path) -> None:
    from pipelines.nlu.paths import default_encoder_dir

    files = data_files("assistant")
    quick = recipe_for("assistant", "quick").as_dict()
    tiny = build_key("assistant", "quick", quick, encoder_files(tiny_encoder), files)
    minilm = build_key("assistant", "quick", quick, encoder_files(default_encoder_dir()), files)
    assert tiny != minilm
    assert tiny == build_key("assistant", "quick", quick, encoder_files(tiny_encoder), files)
    assert tiny != build_key("assistant", "quick", {**quick, "epochs": 1}, encoder_files(tiny_encoder), files)
