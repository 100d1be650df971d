"""Tune the LM fusion weights on a development set, never the test sets, for both LM searches.

The development set is sentences from the *dev* splits (SNIPS dev, the assistant's dev commands,
fresh digit strings) spoken by the held-out synthetic voices: the voices are new to the acoustic
model as in the test sets, the sentences are in neither the LM nor the test sets. The acoustic
model's log-probabilities are computed once (the serving runtime, 160 ms chunks), then the beam
search runs for each point of a grid. Each search has its own best point (lowest mean WER over the
three sets), written into the model's config.pbtxt: `lexicon_alpha`, `lexicon_beta` for the C++
lexicon search the service uses by default, `lm_alpha`, `lm_beta`, `lm_oov_penalty` for the Python
open-vocabulary search (streams with speech_contexts). Both grids go into `<model>/lm/tuning.json`.

`python -m pipelines.asr tune-lm --repository models` (a few minutes on 2 cores).
"""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from pipelines.asr import data
from pipelines.asr.export import load_runtime
from pipelines.asr.text import edit_distance
from pipelines.asr.texts import evaluation_texts
from pipelines.asr.triton_config import parameters, set_parameter
from rivulet.asr.decoding import BeamDecoder, GreedyDecoder
from rivulet.asr.language_model import FusionWeights, LanguageModel
from rivulet.asr.lexicon_decoding import Lexicon, LexiconSearch
from rivulet.asr.settings import AsrSettings
from rivulet.asr.vocabulary import Vocabulary

PER_SET = 100
SEED = 4321
GRID = {"alpha": (0.3, 0.5, 0.7, 0.9), "beta": (0.0, 0.5, 1.0, 2.0), "oov_penalty": (-4.0, -6.0, -9.0)}
LEXICON_GRID = {"alpha": (0.3, 0.5, 0.7, 0.9), "beta": (-1.0, 0.0, 1.0, 2.0)}
BEAM = AsrSettings.model_fields["asr_beam_size"].default  # the service's beams
LEXICON_BEAM = AsrSettings.model_fields["asr_lexicon_beam_size"].default
LEXICON_THRESHOLD = AsrSettings.model_fields["asr_lexicon_beam_threshold"].default


def dev_texts(seed: int = SEED) -> dict[str, list[str]]:
    return evaluation_texts(random.Random(seed), PER_SET, split="dev")


def dev_set(cache: Path, seed: int = SEED, workers: int = 2) -> dict[str, list[dict]]:
    """Render (once, cached) the development utterances; manifest rows per set."""
    root = cache / "data" / f"lm-dev-{seed}"
    jobs = data.held_out_voice_jobs(random.Random(seed), dev_texts(seed), root, key="{}")
    root.mkdir(parents=True, exist_ok=True)
    data.render_manifests(jobs, root, workers)
    return {name: data.read_manifest(root / f"{name}.jsonl") for name in jobs}


def tune(model_dir: Path, cache: Path) -> dict:
    started = time.time()
    runtime = load_runtime().StreamingRecognizer(str(model_dir / "1"), intra_op_num_threads=1)
    cfg = runtime.config
    vocabulary = Vocabulary(tuple(cfg.vocabulary), cfg.blank_index, cfg.tokenizer)
    lm = LanguageModel.load(model_dir / parameters(model_dir / "config.pbtxt")["language_model"])
    sets = {
        name: [
            (
                row["text"],
                runtime.transcribe_logprobs(soundfile.read(row["audio_filepath"], dtype="float32")[0]),
            )
            for row in rows
        ]
        for name, rows in dev_set(cache).items()
    }
    words = {name: sum(len(t.split()) for t, _ in items) for name, items in sets.items()}

    def wer_of(decode) -> dict[str, float]:
        return {
            name: sum(edit_distance(text.split(), decode(lp).split()) for text, lp in items) / words[name]
            for name, items in sets.items()
        }

    def greedy(lp: np.ndarray) -> str:
        decoder = GreedyDecoder(vocabulary)
        decoder.advance(lp, 0)
        return decoder.hypothesis().text

    greedy_result = {"weights": None, "wer": wer_of(greedy)}
    results = []
    for alpha, beta, oov in tqdm(list(itertools.product(*GRID.values())), desc="open search grid"):
        weights = FusionWeights(alpha, beta, oov)

        def fused(lp: np.ndarray, weights: FusionWeights = weights) -> str:
            decoder = BeamDecoder(vocabulary, beam_size=BEAM, lm=lm, weights=weights)
            decoder.advance(lp, 0)
            return decoder.best()[0].text

        results.append({"weights": [alpha, beta, oov], "wer": wer_of(fused)})
    lexicon = Lexicon(lm, vocabulary)
    lexicon_results = []
    for alpha, beta in tqdm(list(itertools.product(*LEXICON_GRID.values())), desc="lexicon search grid"):
        search = LexiconSearch(lexicon, FusionWeights(alpha, beta), LEXICON_BEAM, LEXICON_THRESHOLD)

        def lexicon_fused(lp: np.ndarray, search: LexiconSearch = search) -> str:
            decoder = search.decoder()
            decoder.advance(lp, 0)
            return decoder.best()[0].text

        lexicon_results.append({"weights": [alpha, beta], "wer": wer_of(lexicon_fused)})
    for r in [greedy_result, *results, *lexicon_results]:
        r["mean_wer"] = float(np.mean(list(r["wer"].values())))
    best = min(results, key=lambda r: r["mean_wer"])
    lexicon_best = min(lexicon_results, key=lambda r: r["mean_wer"])
    config = model_dir / "config.pbtxt"
    alpha, beta, oov = best["weights"]
    for key, value in (("lm_alpha", alpha), ("lm_beta", beta), ("lm_oov_penalty", oov)):
        set_parameter(config, str(value), key)
    for key, value in zip(("lexicon_alpha", "lexicon_beta"), lexicon_best["weights"], strict=True):
        set_parameter(config, str(value), key)
    summary = {
        "dev_set": {name: len(items) for name, items in sets.items()},
        "greedy": greedy_result,
        "lexicon": {"beam_size": LEXICON_BEAM, "beam_threshold": LEXICON_THRESHOLD, "best": lexicon_best},
        "open": {"beam_size": BEAM, "best": best},
        "lexicon_grid": lexicon_results,
        "grid": results,
        "wall_s": round(time.time() - started, 1),
    }
    (model_dir / "lm" / "tuning.json").write_text(json.dumps(summary, indent=1) + "\n")
    return {k: v for k, v in summary.items() if not k.endswith("grid")}
