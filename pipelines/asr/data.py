"""Speech data the project makes: synthetic voices × domain texts × augmentation, plus real FSDD speech.

Held out for evaluation, never trained on: whole real speakers (``HELD_OUT_SPEAKERS``) and whole
synthetic voices (``is_held_out_voice``: one flite voice, one festival voice and every espeak-ng
dialect spoken with a few variants). Utterances are written as 16 kHz 16-bit WAV into the cache
(``$RIVULET_CACHE_DIR/asr/data/<key>/``), never into the repository, with NeMo manifests
(``audio_filepath``, ``duration``, ``text``). Generation runs in worker processes with a tqdm
bar and is resumable: files that exist are not made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import soxr
from tqdm import tqdm

from pipelines.asr import augment as aug
from pipelines.asr.paths import fsdd_dir
from pipelines.asr.text import normalize
from pipelines.asr.texts import evaluation_texts, training_texts
from rivulet.voices import Voice, all_voices, synthesize

SAMPLE_RATE = 16000
DATA_VERSION = 1
ONSET_LEAD_S = (0.3, 1.0)  # leading silence of the stage-2 copy (pad_onsets)
HELD_OUT_SPEAKERS = ("lucas", "theo")
HELD_OUT_FLITE = ("rms",)
HELD_OUT_FESTIVAL = ("ked_diphone",)
HELD_OUT_ESPEAK_VARIANTS = ("f3", "m3", "steph", "david")
ENGINE_WEIGHTS = {"espeak-ng": 0.72, "flite": 0.2, "festival": 0.08}


def is_held_out_voice(voice: Voice) -> bool:
    if voice.engine == "flite":
        return voice.name in HELD_OUT_FLITE
    if voice.engine == "festival":
        return voice.name in HELD_OUT_FESTIVAL
    variant = voice.name.partition("+")[2]
    return variant in HELD_OUT_ESPEAK_VARIANTS


def training_voices() -> list[Voice]:
    return [v for v in all_voices() if not is_held_out_voice(v)]


def held_out_voices() -> list[Voice]:
    return [v for v in all_voices() if is_held_out_voice(v)]


@dataclass(frozen=True)
class DataProfile:
    """How much speech to make; ``full`` for the embedded model, ``quick`` for pipeline tests."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)  # training texts per category
    fsdd_copies: int = 3  # augmented copies per real training recording (plus the clean one)
    fsdd_per_speaker: int = 450
    eval_per_set: int = 100  # held-out synthetic sentences per set
    eval_fsdd_per_speaker: int = 450
    seed: int = 1234


PROFILES = {
    "full": DataProfile("full", {"snips": 6000, "assistant": 3500, "digits": 3500, "numbers": 2000}),
    "quick": DataProfile(
        "quick",
        {"snips": 60, "assistant": 60, "digits": 60, "numbers": 20},
        fsdd_copies=0,
        fsdd_per_speaker=15,
        eval_per_set=4,
        eval_fsdd_per_speaker=4,
    ),
}


@dataclass(frozen=True)
class Job:
    """One utterance to make: a voice speaking text (or a real recording), then augmentation."""

    path: str
    text: str
    source: str  # "voice:<id>", or a recording: "fsdd:<wav path>", "file:<audio path>"
    rate: float
    pitch: float
    seed: int
    augment: bool
    category: str


def _load_recording(path: str) -> np.ndarray:
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return soxr.resample(audio[:, 0], rate, SAMPLE_RATE, quality="HQ").astype(np.float32)


def render(job: Job) -> dict:
    """Make one utterance (in a worker process) and return its manifest row."""
    target = Path(job.path)
    if not target.exists():
        if job.source.startswith(("fsdd:", "file:")):  # a real recording (any rate, WAV or FLAC)
            audio = _load_recording(job.source[5:])
        else:
            samples, rate = synthesize(Voice.parse(job.source[6:]), job.text, job.rate, job.pitch)
            audio = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
        rng = np.random.default_rng(job.seed)
        audio = aug.augment(audio, rng, aug.AugmentPolicy() if job.augment else aug.CLEAN)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.wav")
        soundfile.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16")
        os.replace(tmp, target)
    info = soundfile.info(target)
    return {
        "audio_filepath": str(target),
        "duration": round(info.frames / info.samplerate, 4),
        "text": job.text,
        "category": job.category,
        "source": job.source,
    }


def _pick_voice(rng: random.Random, voices: list[Voice]) -> Voice:
    engines = [e for e in ENGINE_WEIGHTS if any(v.engine == e for v in voices)]
    engine = rng.choices(engines, weights=[ENGINE_WEIGHTS[e] for e in engines])[0]
    return rng.choice([v for v in voices if v.engine == engine])


def fsdd_rows(speakers_in: bool, speakers: tuple[str, ...], per_speaker: int) -> list[dict]:
    """FSDD manifest rows of (or without) ``speakers``; ``per_speaker`` recordings each."""
    rows = [json.loads(line) for line in (fsdd_dir() / "manifest.jsonl").read_text().splitlines() if line]
    chosen = [r for r in rows if (r["speaker"] in speakers) == speakers_in]
    counts: dict[str, int] = {}
    out = []
    for row in chosen:
        counts[row["speaker"]] = counts.get(row["speaker"], 0) + 1
        if counts[row["speaker"]] <= per_speaker:
            out.append(row)
    return out


def plan(profile: DataProfile, root: Path) -> dict[str, list[Job]]:
    """Every job of the profile, per manifest name: train, eval_<set>_synthetic, eval_digits_real."""
    rng = random.Random(profile.seed)
    train_voices = training_voices()
    jobs: dict[str, list[Job]] = {"train": []}
    for i, (category, text) in enumerate(training_texts(rng, profile.counts)):
        voice = _pick_voice(rng, train_voices)
        rate, pitch = rng.uniform(0.8, 1.3), rng.uniform(0.8, 1.25)
        path = root / "train" / f"{i // 1000:03d}" / f"{category}_{i:06d}.wav"
        jobs["train"].append(
            Job(str(path), text, f"voice:{voice.id}", rate, pitch, rng.randrange(2**31), True, category)
        )
    for row in fsdd_rows(False, HELD_OUT_SPEAKERS, profile.fsdd_per_speaker):
        source = str(fsdd_dir() / row["audio_filepath"])
        stem = Path(row["audio_filepath"]).stem
        for copy in range(profile.fsdd_copies + 1):
            path = root / "train" / "fsdd" / f"{stem}_{copy}.wav"
            jobs["train"].append(
                Job(
                    str(path),
                    normalize(row["text"]),
                    f"fsdd:{source}",
                    1.0,
                    1.0,
                    rng.randrange(2**31),
                    copy > 0,
                    "fsdd",
                )
            )
    jobs.update(held_out_voice_jobs(rng, evaluation_texts(rng, profile.eval_per_set), root))
    jobs["eval_digits_real"] = []
    for row in fsdd_rows(True, HELD_OUT_SPEAKERS, profile.eval_fsdd_per_speaker):
        source = str(fsdd_dir() / row["audio_filepath"])
        path = root / "eval_digits_real" / Path(row["audio_filepath"]).name
        jobs["eval_digits_real"].append(
            Job(str(path), normalize(row["text"]), f"fsdd:{source}", 1.0, 1.0, 0, False, "digits")
        )
    return jobs


def held_out_voice_jobs(
    rng: random.Random, texts: dict[str, list[str]], root: Path, key: str = "eval_{}_synthetic"
) -> dict[str, list[Job]]:
    """Each set's texts spoken by a held-out voice drawn per text, clean, into root/<key>/."""
    voices = held_out_voices()
    jobs: dict[str, list[Job]] = {}
    for name, items in texts.items():
        manifest = key.format(name)
        jobs[manifest] = []
        for i, text in enumerate(items):
            voice = rng.choice(voices)
            path = root / manifest / f"{i:05d}.wav"
            jobs[manifest].append(
                Job(str(path), text, f"voice:{voice.id}", 1.0, 1.0, rng.randrange(2**31), False, name)
            )
    return jobs


def data_key(profile: DataProfile) -> str:
    """Changes with the profile and ``DATA_VERSION`` (bump it when what the audio sounds like changes)."""
    digest = hashlib.sha256(json.dumps({**asdict(profile), "version": DATA_VERSION}, sort_keys=True).encode())
    return f"{profile.name}-{digest.hexdigest()[:12]}"


def generate(profile: DataProfile, cache: Path, workers: int = 2) -> Path:
    """Make (or finish making) the profile's audio; returns the directory holding the manifests."""
    root = cache / "data" / data_key(profile)
    done = root / "DONE"
    if done.exists():
        return root
    started = time.time()
    jobs = plan(profile, root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "held_out.json").write_text(
        json.dumps({"speakers": HELD_OUT_SPEAKERS, "voices": [v.id for v in held_out_voices()]}, indent=1)
    )
    render_manifests(jobs, root, workers)
    stats = {
        "wall_s": round(time.time() - started, 1),
        "workers": workers,
        "utterances": sum(map(len, jobs.values())),
    }
    (root / "generation.json").write_text(json.dumps(stats))
    done.write_text("ok\n")
    return root


def render_manifests(jobs: dict[str, list[Job]], root: Path, workers: int) -> None:
    """Render every job (existing files are kept) in `workers` processes; write root/<name>.jsonl."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for name, items in jobs.items():
            rows = list(
                tqdm(pool.map(render, items, chunksize=16), total=len(items), desc=f"asr data {name}")
            )
            with open(root / f"{name}.jsonl", "w") as out:
                out.writelines(json.dumps(row) + "\n" for row in rows)


def generate_evaluation(profile: DataProfile, cache: Path, workers: int = 2) -> Path:
    """Only the profile's held-out sets (minutes, not the training data's hour): for benchmarks.

    Same directory, files and manifests as `generate`, which later resumes around them.
    """
    root = cache / "data" / data_key(profile)
    jobs = {name: items for name, items in plan(profile, root).items() if name.startswith("eval_")}
    missing = {name: items for name, items in jobs.items() if not (root / f"{name}.jsonl").exists()}
    if missing:
        root.mkdir(parents=True, exist_ok=True)
        render_manifests(missing, root, workers)
    return root


def read_manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _pad_onset(job: tuple[str, str, int]) -> None:
    source, target, seed = job
    if Path(target).exists():
        return
    rng = np.random.default_rng(seed)
    audio, _ = soundfile.read(source, dtype="float32")
    lead = int(rng.uniform(*ONSET_LEAD_S) * SAMPLE_RATE)
    tail = int(rng.uniform(0.1, 0.3) * SAMPLE_RATE)
    if rng.random() < 0.5:
        pad = np.zeros(lead + tail, np.float32)
    else:
        pad = aug.colored_noise(lead + tail, rng, str(rng.choice(["white", "pink", "brown"])))
        pad *= 10 ** (rng.uniform(-75, -45) / 20)
    out = np.concatenate([pad[:lead], audio, pad[lead:]]).astype(np.float32)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(target + ".tmp.wav", out, SAMPLE_RATE, subtype="PCM_16")
    os.replace(target + ".tmp.wav", target)


def pad_onsets(data_root: Path, workers: int = 2, seed: int = 99) -> Path:
    """A copy of ``data_root``'s training set in which speech never starts in the first chunk.

    A first model emitted a guessed first letter in the first 80 ms of every utterance, silence or
    not: a third of the generated utterances start speaking at once, so "emit early" paid off in
    training. With 0.3–1.0 s of silence or faint noise in front, it never does.
    """
    out_root = data_root.parent / f"{data_root.name}-onset"
    if (out_root / "DONE").exists():
        return out_root
    rows = read_manifest(data_root / "train.jsonl")
    jobs, new_rows = [], []
    for i, row in enumerate(rows):
        target = out_root / "train" / f"{i // 1000:03d}" / f"{i:06d}.wav"
        jobs.append((row["audio_filepath"], str(target), seed * 1_000_003 + i))
        new_rows.append({**row, "audio_filepath": str(target)})
    out_root.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(tqdm(pool.map(_pad_onset, jobs, chunksize=64), total=len(jobs), desc="asr onset padding"))
    for row in new_rows:
        row["duration"] = round(soundfile.info(row["audio_filepath"]).duration, 4)
    (out_root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in new_rows))
    (out_root / "DONE").write_text("ok\n")
    return out_root
