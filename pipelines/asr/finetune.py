"""The streaming model on real voices: fine-tune a built model on real speech mixed with synthetic.

`python -m pipelines.asr finetune --source models --repository DIR` takes the built model in
`--source` (its weights back from ONNX, `from_onnx`), trains it further on

- real recordings by the **dev** speakers of `pipelines.asr.real_speech` only (AN4 and Speech
  Commands; the test speakers, all accented speakers and FSDD's lucas and theo are never heard),
  each clean plus augmented copies (`augment.AugmentPolicy`: speed, reverberation, 8 kHz band,
  noise, gain);
- Picovoice's wake-word recordings (no evaluation set uses them), a sample, clean;
- FSDD's four training speakers, and synthetic voices speaking SNIPS, assistant commands, digit
  strings and numbers (`SYNTHETIC`), so the model keeps what it knew;

all with 0.3–1 s of silence or faint noise in front (`data.pad_onsets`, as the full build's second
stage), and writes the exported model into `--repository`. Everything is cached under
`$RIVULET_CACHE_DIR/asr` (`data/finetune-*`, `runs/finetune-*`, `builds/finetune-*`) and resumable.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

from pipelines.asr import data, real_speech
from pipelines.asr.build import MODEL_NAME, export_build, install, parity_clips
from pipelines.asr.text import normalize
from pipelines.asr.train import RECIPES, train

FINETUNE_VERSION = 1
SYNTHETIC = data.DataProfile(
    "finetune",
    {"snips": 1500, "assistant": 1500, "digits": 800, "numbers": 400},
    fsdd_copies=1,
    fsdd_per_speaker=150,
)
# augmented copies of each real dev recording besides its clean one
REAL_COPIES = {"an4": 4, "commands": 3}
WAKE_WORD_CLIPS = 1200


def real_jobs(root: Path, seed: int = 4321) -> list[data.Job]:
    """Jobs for the dev speakers' AN4 and Speech Commands clips (with copies) and a wake-word sample."""
    rng = random.Random(seed)
    jobs: list[data.Job] = []
    for name, copies in REAL_COPIES.items():
        for i, clip in enumerate(real_speech.clips(name, "dev")):
            for copy in range(copies + 1):
                path = root / "train" / name / f"{i:05d}_{copy}.wav"
                source, seed = f"file:{clip.path}", rng.randrange(2**31)
                jobs.append(
                    data.Job(
                        str(path), normalize(clip.text), source, 1.0, 1.0, seed, copy > 0, f"real_{name}"
                    )
                )
    wake = real_speech.SPEECH / "wake_words"
    rows = [json.loads(line) for line in (wake / "manifest.jsonl").read_text().splitlines() if line]
    for i, row in enumerate(sorted(rng.sample(rows, min(WAKE_WORD_CLIPS, len(rows))), key=str)):
        path = root / "train" / "wake_words" / f"{i:05d}.wav"
        source, seed = f"file:{wake / row['audio_filepath']}", rng.randrange(2**31)
        jobs.append(
            data.Job(str(path), normalize(row["text"]), source, 1.0, 1.0, seed, False, "real_wake_words")
        )
    return jobs


def data_key() -> str:
    payload = {"synthetic": data.data_key(SYNTHETIC), "real": REAL_COPIES, "wake": WAKE_WORD_CLIPS,
               "split": "real_speech dev", "version": FINETUNE_VERSION}  # fmt: skip
    return f"finetune-{hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]}"


def generate(cache: Path, workers: int = 2) -> tuple[Path, Path]:
    """(the mixed, onset-padded training root, the synthetic root with its held-out eval sets)."""
    synthetic = data.generate(SYNTHETIC, cache, workers=workers)
    root = cache / "data" / data_key()
    if not (root / "DONE").exists():
        root.mkdir(parents=True, exist_ok=True)
        data.render_manifests({"real": real_jobs(root)}, root, workers)
        rows = data.read_manifest(synthetic / "train.jsonl") + data.read_manifest(root / "real.jsonl")
        (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (root / "DONE").write_text("ok\n")
    return data.pad_onsets(root, workers=workers), synthetic


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def finetune(
    source: Path, repository: Path, cache: Path, workers: int = 2, model_name: str = MODEL_NAME
) -> Path:
    """Fine-tune `source`'s model (a Triton model directory) and install the result into `repository`."""
    from pipelines.asr.from_onnx import write_nemo

    recipe = RECIPES["finetune"]
    source_sha = _sha(source / "1" / "encoder.onnx")
    key = f"{data_key()}-{source_sha}-{hashlib.sha256(repr(recipe).encode()).hexdigest()[:8]}"
    built = cache / "builds" / key / model_name
    if not (built / "1" / "build.json").exists():
        started = time.time()
        train_root, synthetic = generate(cache, workers)
        data_s = time.time() - started
        init = cache / "runs" / key / "init" / "model.nemo"
        if not init.exists():
            write_nemo(source / "1", init)
        run_dir = cache / "runs" / key
        nemo_path = train(train_root, run_dir, recipe, init=init)
        stats = json.loads((run_dir / "train_stats.json").read_text())
        base = json.loads((source / "1" / "build.json").read_text())
        description = (
            f"Rivulet streaming Conformer-CTC (full profile fine-tuned on real voices, "
            f"{stats['params'] / 1e6:.2f} M params)"
        )
        extra = {
            "run_key": key,
            "profile": "finetune",
            "data_root": str(train_root),
            "data_s": round(data_s, 1),
            "train": {**stats, "base": base.get("train")},
            "nemo": str(nemo_path),
            "source": {"run_key": base.get("run_key"), "encoder_sha256_12": source_sha},
        }
        export_build(nemo_path, built, description, parity_clips(synthetic), extra, recipe.threads)
    return install(built, repository, model_name)
