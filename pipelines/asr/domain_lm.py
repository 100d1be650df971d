"""The ASR model's domain language model: a word trigram over the assistant's training texts.

Texts come only from the train splits (`texts.py`): SNIPS train sentences, the assistant's train
commands, the answers a user gives to the assistant's questions (those sentences' slot values on
their own, short replies such as "yes please" without fillers), and generated digit strings,
numbers, times and dates, the same kinds of text the acoustic model learns from. Evaluation
sentences (SNIPS and assistant test splits) are never in it (an answer that is also a test
sentence is left out); `build` reports how many of them happen to also occur in the train splits.

`python -m pipelines.asr lm --repository models` writes `<model>/lm/domain_3gram.arpa.gz` and sets
the model's `language_model` parameter; the ASR service fuses it into its beam search.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from pipelines.asr.ngram import build_arpa
from pipelines.asr.texts import answers, assistant_commands, digit_string, number_phrase, snips_sentences
from pipelines.asr.triton_config import set_parameter

LM_FILE = "lm/domain_3gram.arpa.gz"
ORDER = 3
SEED = 7
GENERATED = {"digits": 6000, "numbers": 6000}


def _test_sentences() -> set[str]:
    return set(snips_sentences("test")) | set(assistant_commands("test"))


def corpus(seed: int = SEED) -> dict[str, list[str]]:
    rng = random.Random(seed)
    tests = _test_sentences()
    return {
        "snips": snips_sentences("train"),
        "assistant": assistant_commands("train"),
        # a short reply can be a whole test sentence too ("no thank you"): those stay out
        "answers": [a for a in answers("train") if a not in tests],
        "digits": [digit_string(rng) for _ in range(GENERATED["digits"])],
        "numbers": [number_phrase(rng) for _ in range(GENERATED["numbers"])],
    }


def build(model_dir: Path) -> dict:
    started = time.time()
    texts = corpus()
    sentences = [s for group in texts.values() for s in group]
    counts = build_arpa(sentences, model_dir / LM_FILE, ORDER)
    set_parameter(model_dir / "config.pbtxt", LM_FILE)
    train = set(sentences)
    overlap = {
        "snips_test": sum(s in train for s in snips_sentences("test")),
        "snips_test_total": len(snips_sentences("test")),
        "assistant_test": sum(s in train for s in assistant_commands("test")),
        "assistant_test_total": len(assistant_commands("test")),
    }
    stats = {
        "file": LM_FILE,
        "order": ORDER,
        "sentences": {name: len(group) for name, group in texts.items()},
        "ngrams": counts,
        "bytes": (model_dir / LM_FILE).stat().st_size,
        "test_sentences_also_in_train_splits": overlap,
        "wall_s": round(time.time() - started, 1),
    }
    (model_dir / "lm" / "build.json").write_text(json.dumps(stats, indent=1) + "\n")
    return stats
