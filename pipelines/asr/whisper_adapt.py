"""Adapt Whisper's decoder to the words people say to an assistant, on real dev speakers only.

Pretrained tiny.en writes "Last." for a real person's "left" and "Now" for "no" when a word is said
on its own. A low-rank adapter (LoRA) on the decoder's linear layers is trained here on the
encoder's own output (CTranslate2 int8, computed once per clip, as served) for:
- one-word commands and FSDD digits: the reference word, as Whisper writes it when right (its most
  common form there, capitalised, with a full stop: " Left.", " 5.");
- AN4 utterances Whisper already gets right: its own transcript (keeps what it knows);
- optionally (`collect --runs`, not in the committed adapter: it heard runs but wrote ordinary
  sentences as short words, "I want double correct" for "I want to book a restaurant") short runs of
  those clips by one speaker (2–4 digits, two commands) joined with a pause.
- optionally (`collect --kept-sentences N`, not in the committed adapter: it cost AN4 more than it
  kept) synthetic SNIPS train sentences by four voices, with tiny.en's own transcript.
Both of Whisper's modes are trained: timestamped (free transcripts) and untimed (hints). `evaluate`
also reads synthetic SNIPS test sentences by three other voices: an adapter must not lose what
tiny.en hears in ordinary sentences.

Speakers: `real_speech`'s dev speakers only, split again by speaker into `fit` (trained on) and
`tune` (chooses the epoch, compared with the pretrained model); the test speakers are never read.
FSDD's four training speakers join `fit` (its two test speakers stay out).

    python -m pipelines.asr.whisper_adapt collect     # encode the clips, pretrained transcripts (~12 min)
    python -m pipelines.asr.whisper_adapt train       # fit: one adapter per epoch in the cache (~8 min)
    python -m pipelines.asr.whisper_adapt evaluate ADAPTER...  # tune speakers: pretrained vs each, report
    python -m pipelines.asr.whisper_adapt evaluate ADAPTER... --windows 10 5  # also in 5 s windows
    python -m pipelines.asr.whisper_adapt install ADAPTER      # make it tiny.en-rivulet (copy, pin sha256)

The adapter (1 MB) is committed; `python -m rivulet.asr.whisper_weights prepare`
applies it to the pinned tiny.en weights (`tiny.en-rivulet`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.asr_real_speech import SERVED_BEAM, engine_module, load, score
from pipelines.asr import real_speech
from pipelines.asr.canonical import canonical_words
from pipelines.asr.data import fsdd_rows
from pipelines.asr.paths import fsdd_dir
from rivulet.asr import whisper_weights
from rivulet.core.tritonserver import cache_dir

BASE = "tiny.en"
ADAPTED = "tiny.en-rivulet"
FSDD_PER_SPEAKER = 100
FSDD_RUNS_PER_SPEAKER = 40
CORE_COMMANDS = "yes no up down left right on off stop go".split()
# synthetic sentences: evaluated with three voices; optionally kept (trained on the pretrained
# model's own transcript) with four others
SENTENCE_VOICES = ("festival:cmu_us_slt_arctic_hts", "flite:awb", "flite:kal16")
KEPT_SENTENCE_VOICES = ("flite:slt", "flite:kal", "festival:kal_diphone", "espeak-ng:en-us+f2")


def work_dir() -> Path:
    path = cache_dir() / "whisper_adapt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def part_of(speaker: str) -> str:
    """`tune` for about a quarter of the dev speakers, `fit` for the rest (stable hash)."""
    return "tune" if hashlib.sha1(f"tune:{speaker}".encode()).hexdigest()[0] in "0123" else "fit"


@dataclass
class Item:
    """One training or tuning example: a clip, or a run of one speaker's clips joined by pauses."""

    clips: tuple[real_speech.Clip, ...]
    part: str
    gaps: tuple[float, ...] = ()  # seconds of silence between the clips of a run

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.clips)

    @property
    def set(self) -> str:
        return self.clips[0].set if len(self.clips) == 1 else "runs"


def items(kept_sentences: int = 0, with_runs: bool = False) -> list[Item]:
    """Every clip collected: the real ones (with runs if asked) and `kept_sentences` synthetic
    sentences."""
    kept = rendered_sentences("train", kept_sentences, KEPT_SENTENCE_VOICES, "kept_sentences")
    return real_items(with_runs) + [Item((c,), "fit") for c in kept]


def real_items(with_runs: bool) -> list[Item]:
    """Dev speakers' lone commands and AN4 utterances, FSDD's training speakers' digits, and runs
    of them if asked."""
    out = []
    for name in ("commands", "an4"):
        out += [Item((c,), part_of(c.speaker)) for c in real_speech.clips(name, "dev")]
    fsdd = defaultdict(list)
    for row in fsdd_rows(False, real_speech.FSDD_HELD_OUT, per_speaker=sys.maxsize):
        clip = real_speech.Clip(fsdd_dir() / row["audio_filepath"], row["text"], row["speaker"], "fsdd")
        fsdd[row["speaker"]].append(clip)
    for _speaker, group in sorted(fsdd.items()):
        group = sorted(group, key=lambda c: c.path)
        out += [Item((c,), "fit") for c in real_speech.sample(group, FSDD_PER_SPEAKER)]
    return out + (runs(fsdd) if with_runs else [])


def rendered_sentences(split: str, n: int, voice_ids: tuple[str, ...], folder: str) -> list[real_speech.Clip]:
    """`n` SNIPS `split` sentences, each spoken by one of `voice_ids` in turn (rendered once into the
    cache, 16 kHz FLAC); their set is `sentences`."""
    import soundfile

    from pipelines.asr.texts import snips_sentences
    from rivulet import voices
    from rivulet.core import audio

    if n <= 0:
        return []
    where = work_dir() / folder
    where.mkdir(exist_ok=True)
    out = []
    for k, text in enumerate(tqdm(real_speech.sample(snips_sentences(split), n), desc=folder, leave=False)):
        voice = voice_ids[k % len(voice_ids)]
        path = where / f"{k:03d}.flac"
        if not path.exists():
            samples, rate = voices.synthesize(voices.Voice.parse(voice), text)
            soundfile.write(path, audio.resample(samples, rate, 16000), 16000)
        out.append(real_speech.Clip(path, text, voice, "sentences"))
    return out


def runs(fsdd: dict[str, list[real_speech.Clip]]) -> list[Item]:
    """Short runs of one speaker's clips: FSDD's training speakers' digits (`fit`) and the dev
    speakers' lone commands (each speaker's part): 2–4 digits, or two of the ten core commands."""
    rng = random.Random(7)
    out = []

    def add(group: list[real_speech.Clip], part: str, count: int, sizes: tuple[int, ...]) -> None:
        for _ in range(count if len(group) >= 2 else 0):
            picked = tuple(rng.sample(group, min(rng.choice(sizes), len(group))))
            gaps = tuple(round(rng.uniform(0.1, 0.5), 2) for _ in picked[1:])
            out.append(Item(picked, part, gaps))

    for _speaker, group in sorted(fsdd.items()):
        add(sorted(group, key=lambda c: c.path), "fit", FSDD_RUNS_PER_SPEAKER, (2, 2, 3, 4))
    commands = defaultdict(list)
    for clip in real_speech.clips("commands", "dev"):
        commands[clip.speaker].append(clip)
    for speaker, group in sorted(commands.items()):
        digits = [c for c in group if c.text in real_speech.DIGIT_WORDS]
        words = [c for c in group if c.text in CORE_COMMANDS]
        add(digits, part_of(speaker), 3, (2, 3))
        add(words, part_of(speaker), 3, (2,))
    return out


def load_item(paths: list[str], gaps: list[float]) -> np.ndarray:
    """A record's audio: its clips at 16 kHz, joined by its gaps of silence."""
    pieces = []
    for k, path in enumerate(paths):
        if k:
            pieces.append(np.zeros(int(gaps[k - 1] * 16000), np.float32))
        pieces.append(load(real_speech.Clip(Path(path), "", "", "")))
    return np.concatenate(pieces)


def engine(model_dir: Path | None = None):
    """The served engine (`whisper_engine`, 2 threads, 10 s least window) on `model_dir` (tiny.en)."""
    module = engine_module()
    directory = model_dir or whisper_weights.prepare(BASE)
    return module, module.WhisperEngine(directory, cpu_threads=2, min_window_s=10.0)


def collect(args: argparse.Namespace) -> None:
    import ctranslate2

    _, eng = engine()
    done = _collected()  # what an earlier collect computed is kept
    records, encoded = [], []
    for item in tqdm(items(args.kept_sentences, args.runs), desc="encode + pretrained transcript"):
        paths = [str(c.path) for c in item.clips]
        samples = load_item(paths, list(item.gaps))
        # a short clip's window is the whole 30 s, unless a request asks for less (the dialog: 10 s)
        windows: dict[int, float] = {}
        for least in args.windows:
            windows.setdefault(eng.window_samples(len(samples), least), least)
        for least in windows.values():
            if (key := _record_key(paths, list(item.gaps), least)) in done:
                record, enc = done[key]
                records.append({**record, "set": item.set, "part": item.part})
                encoded.append(enc)
                continue
            feats, _ = eng.features([samples], [least])
            view = ctranslate2.StorageView.from_array(feats)
            enc = np.array(eng.encoder.encode(view, to_cpu=True))[0]
            [result] = eng.model.generate(
                ctranslate2.StorageView.from_array(enc[None]), [eng.free_prompt], beam_size=SERVED_BEAM,
                max_length=256,
            )  # fmt: skip
            encoded.append(enc.astype(np.float16))
            tokens = list(result.sequences_ids[0])
            records.append({
                "paths": paths, "gaps": list(item.gaps), "text": item.text, "speaker": item.clips[0].speaker,
                "set": item.set, "part": item.part, "seconds": len(samples) / 16000, "tokens": tokens,
                "heard": eng.tokenizer.decode([t for t in tokens if t < eng.tokenizer.eot]),
                "window": least,
            })  # fmt: skip
    np.savez(work_dir() / "encoded.npz", *encoded)  # windows differ: 30 s for short clips, else ≥ 10 s
    (work_dir() / "records.json").write_text(json.dumps(records))
    right = Counter((r["set"], r["part"], r["window"]) for r in records if _right(r))
    total = Counter((r["set"], r["part"], r["window"]) for r in records)
    for key in sorted(total):
        print(
            f"{key[0]:9} {key[1]:5} least window {key[2]:4} s: {total[key]:4} clips, "
            f"pretrained right {right[key] / total[key]:.1%}"
        )


def _record_key(paths: list[str], gaps: list[float], least: float) -> str:
    return json.dumps([paths, gaps, least])


def _collected() -> dict[str, tuple[dict, np.ndarray]]:
    """An earlier collect's records and encoder outputs, by clip and window."""
    records_path, encoded_path = work_dir() / "records.json", work_dir() / "encoded.npz"
    if not (records_path.exists() and encoded_path.exists()):
        return {}
    records = json.loads(records_path.read_text())
    with np.load(encoded_path) as stored:
        return {
            _record_key(r["paths"], r["gaps"], r["window"]): (r, stored[f"arr_{i}"])
            for i, r in enumerate(records)
        }


def _right(record: dict) -> bool:
    return canonical_words(record["heard"]) == canonical_words(record["text"])


def targets(records: list[dict], tokenizer) -> list[tuple[int, list[int], list[int]]]:
    """(record index, timestamped target, untimed target) for each clip trained on: tokens after the
    prompt, up to and including the end token."""
    ts0, eot = tokenizer.timestamp_begin, tokenizer.eot
    written: dict[str, Counter] = defaultdict(Counter)  # how Whisper writes a lone word when right
    for r in records:
        if r["set"] in ("commands", "fsdd") and r["part"] == "fit" and _right(r):
            written[r["text"]][r["heard"].strip().rstrip(".!?,")] += 1
    out = []
    for i, r in enumerate(records):
        if r["part"] != "fit":
            continue
        timed = [t for t in r["tokens"] if t != eot]
        if r["set"] == "an4" and not _right(r):
            continue  # its written form is not known: not trained on
        # lone words and runs, written one way (" Left.", " 5.", " 4 8.", " Go left."); AN4 and the
        # kept sentences: tiny.en's own transcript as it is
        if r["set"] in ("commands", "fsdd", "runs"):
            stamps = [t for t in timed if t >= ts0]
            start = stamps[0] if stamps else ts0
            end = stamps[-1] if len(stamps) > 1 else ts0 + min(round(r["seconds"] / 0.02), 1500)
            timed = [start, *tokenizer.encode(written_form(r["text"], written)), max(end, start + 1)]
        untimed = [t for t in timed if t < ts0]
        out.append((i, [*timed, eot], [*untimed, eot]))
    return out


def written_form(text: str, written: dict[str, Counter]) -> str:
    """How a lone word or a run is trained to be written: each word as Whisper writes it on its own
    when right, digits apart ("4 8"), the first capitalised, the others in lower case, a full stop."""
    words = [written[w].most_common(1)[0][0] if written.get(w) else w for w in text.split()]
    words = [words[0][:1].upper() + words[0][1:], *(w if w.isdigit() else w.lower() for w in words[1:])]
    return f" {' '.join(words)}."


def _batches(examples: list, lengths: list[int], size: int, rng: random.Random) -> list[list]:
    """Shuffled batches, each of clips with one encoder window."""
    groups = defaultdict(list)
    for example in examples:
        groups[lengths[example[0]]].append(example)
    batches = []
    for group in groups.values():
        rng.shuffle(group)
        batches += [group[i : i + size] for i in range(0, len(group), size)]
    rng.shuffle(batches)
    return batches


def train(args: argparse.Namespace) -> None:
    from pipelines.asr.whisper_decoder import WhisperDecoder
    from rivulet.asr import ct2_model_file

    _, eng = engine()
    tok = eng.tokenizer
    records = json.loads((work_dir() / "records.json").read_text())
    with np.load(work_dir() / "encoded.npz") as stored:
        encoded = [stored[f"arr_{i}"] for i in range(len(records))]
    model = ct2_model_file.read(whisper_weights.prepare(BASE) / "model.bin")
    torch.manual_seed(args.seed)
    decoder = WhisperDecoder(model, rank=args.rank, alpha=args.alpha)
    examples = []
    for i, timed, untimed in targets(records, tok):
        examples.append((i, list(eng.free_prompt), timed))
        examples.append((i, list(eng.prompt), untimed))
    print(f"{len(examples)} sequences from {len(examples) // 2} fit clips", flush=True)
    opt = torch.optim.AdamW(decoder.adapters.parameters(), lr=args.lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    lengths = [len(e) for e in encoded]
    steps = args.epochs * len(_batches(examples, lengths, args.batch, random.Random(0)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    torch.set_num_threads(2)
    curve = []
    for epoch in range(args.epochs):
        losses = []
        bar = tqdm(_batches(examples, lengths, args.batch, rng), desc=f"epoch {epoch + 1}")
        for batch in bar:
            seqs = [p + t for _, p, t in batch]
            width = max(len(s) for s in seqs)
            tokens = torch.full((len(batch), width), tok.eot, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for b, (_, prompt, target) in enumerate(batch):
                seq = prompt + target
                tokens[b, : len(seq)] = torch.tensor(seq)
                labels[b, len(prompt) - 1 : len(seq) - 1] = torch.tensor(target)
            enc = torch.from_numpy(np.stack([encoded[i] for i, _, _ in batch]).astype(np.float32))
            logits = decoder(tokens, enc)
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        path = work_dir() / f"adapter_epoch{epoch + 1}.npz"
        np.savez(path, **decoder.factors())
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f} → {path}", flush=True)
        curve.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "steps": len(losses)})
        (work_dir() / "train.json").write_text(json.dumps({"args": vars(args), "epochs": curve}, indent=1))


def sentence_records(n: int) -> list[dict]:
    """`n` SNIPS test sentences spoken by three synthetic voices: the ordinary sentences an adapter
    trained on short real clips must not lose."""
    return [
        {"paths": [str(c.path)], "gaps": [], "text": c.text, "speaker": c.speaker, "set": c.set}
        for c in rendered_sentences("test", n, SENTENCE_VOICES, f"sentences{n}")
    ]


def evaluate(args: argparse.Namespace) -> None:
    """Tune speakers through the engine as served (beam 2, 10 s window): pretrained vs adapted."""
    records = json.loads((work_dir() / "records.json").read_text())
    tune = [r for r in records if r["part"] == "tune" and not r.get("window")]
    tune += sentence_records(args.sentences)
    audio = {  # read once, decoded by every system in every mode
        _record_key(r["paths"], r["gaps"], 0.0): load_item(r["paths"], r["gaps"]) for r in tune
    }
    systems = {"pretrained": whisper_weights.prepare(BASE)}
    for adapter in args.adapters:
        systems[Path(adapter).stem] = whisper_weights.prepare_adapted(
            Path(adapter), work_dir() / Path(adapter).stem
        )
    results = {}
    for label, where in systems.items():
        module, eng = engine(where)
        hints = [(w, 30.0) for w in real_speech.COMMAND_WORDS]
        modes = {
            "free": module.DecodeOptions(beam_size=SERVED_BEAM),
            "hints": module.DecodeOptions(beam_size=SERVED_BEAM, phrases=hints),
        }
        for least in args.windows:  # as the dialog asks: a least window for every clip
            modes[f"free {least:g} s"] = module.DecodeOptions(beam_size=SERVED_BEAM, window_s=least)
            modes[f"hints {least:g} s"] = module.DecodeOptions(
                beam_size=SERVED_BEAM, phrases=hints, window_s=least
            )
        for mode, opts in modes.items():
            for name in ("commands", "an4", "runs", "sentences"):
                hinted_elsewhere = mode.startswith("hints") and name != "commands"
                if hinted_elsewhere or (name == "sentences" and mode.startswith("hints")):
                    continue
                group = [r for r in tune if r["set"] == name]
                started = time.perf_counter()
                hyps = []
                for r in tqdm(group, desc=f"{label} {name} {mode}", leave=False):
                    [res] = eng.decode([(audio[_record_key(r["paths"], r["gaps"], 0.0)], opts)])
                    hyps.append(res["hypotheses"][0]["text"] if res["hypotheses"] else "")
                s = score([r["text"] for r in group], hyps)
                s["seconds"] = time.perf_counter() - started
                s["misheard"] = [
                    [r["text"], h] for r, h in zip(group, hyps, strict=True)
                    if canonical_words(r["text"]) != canonical_words(h)
                ][:20]  # fmt: skip
                results[f"{label} {name} {mode}"] = s
                print(f"{label:24} {name:9} {mode:6} WER {s['wer']:.1%} right {s['utterances_right']:.1%} "
                      f"(n={s['n']}, {s['seconds']:.0f} s)", flush=True)  # fmt: skip
    (work_dir() / "evaluate.json").write_text(json.dumps(results, indent=1))
    report(results)


def report(results: dict) -> None:
    """bench/reports/whisper_adapt.md (+ .png): the tune speakers' figures per system and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = (
        json.loads((work_dir() / "train.json").read_text()) if (work_dir() / "train.json").exists() else {}
    )
    lines = [
        "# Whisper decoder adapter: tune speakers",
        "",
        "`python -m pipelines.asr.whisper_adapt evaluate` — dev speakers held out of the adapter's training",
        "(`part_of`: about a quarter of `real_speech`'s dev speakers); the engine as served (beam 2,",
        "timestamped, 10 s least window; short clips in the whole 30 s window unless a 10 s mode says so).",
        "",
        "| system | set | mode | clips | WER | utterances right |",
        "|---|---|---|---|---|---|",
    ]
    for key, s in results.items():
        label, name, mode = key.split(" ", 2)
        lines.append(
            f"| {label} | {name} | {mode} | {s['n']} | {s['wer']:.1%} | {s['utterances_right']:.1%} |"
        )
    if trained:
        lines += ["", f"Training: {json.dumps(trained['args'])}", ""]
        lines += [
            f"- epoch {e['epoch']}: mean loss {e['loss']:.4f} over {e['steps']} steps"
            for e in trained["epochs"]
        ]
    lines += ["", "Misheard (first 20 per row):", ""]
    lines += [f"- {key}: {s['misheard']}" for key, s in results.items() if s["misheard"]]
    reports = Path(__file__).resolve().parents[2] / "bench" / "reports"
    (reports / "whisper_adapt.md").write_text("\n".join(lines) + "\n\n![tune speakers](whisper_adapt.png)\n")
    fig, ax = plt.subplots(figsize=(9, 4))
    keys = list(results)
    ax.barh(range(len(keys)), [100 * results[k]["utterances_right"] for k in keys], color="tab:blue")
    ax.set_yticks(range(len(keys)), keys, fontsize=7)
    ax.set_xlabel("utterances right (%)")
    ax.set_xlim(50, 100)
    ax.set_title("Whisper tiny.en with and without the decoder adapter (tune speakers)")
    fig.tight_layout()
    fig.savefig(reports / "whisper_adapt.png", dpi=110)
    print(f"report: {reports / 'whisper_adapt.md'}", flush=True)


def install(args: argparse.Namespace) -> None:
    """Make `adapter` the committed one: copy it into the service's data and pin its sha256 and the
    adapted model's files in `whisper_weights.json`."""
    target = whisper_weights.DATA / whisper_weights.SPEC[ADAPTED]["adapter"]
    shutil.copyfile(args.adapter, target)
    spec_path = whisper_weights.DATA / "whisper_weights.json"
    spec = json.loads(spec_path.read_text())
    entry = spec[ADAPTED]
    entry["adapter_sha256"] = whisper_weights.sha256(target)
    built = whisper_weights.prepare_adapted(target, work_dir() / "installed", entry["base"])
    entry["files"] = {name: whisper_weights.sha256(built / name) for name in entry["files"]}
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    print(f"{target} installed; {spec_path} pins it and the adapted model's files", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument(
        "--windows", type=float, nargs="+", default=[0.0, 10.0],
        help="least encoder windows (s) a clip is encoded in (0: the engine's; 10: the dialog's)",
    )  # fmt: skip
    c.add_argument("--runs", action="store_true", help="also short runs of one speaker's clips (tried)")
    c.add_argument(
        "--kept-sentences", type=int, default=0,
        help="synthetic SNIPS train sentences trained on tiny.en's own transcript (tried: 300)",
    )  # fmt: skip
    t = sub.add_parser("train")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--rank", type=int, default=8)
    t.add_argument("--alpha", type=float, default=16.0)
    t.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("evaluate")
    e.add_argument("adapters", nargs="*")
    e.add_argument("--sentences", type=int, default=60, help="synthetic SNIPS test sentences")
    e.add_argument(
        "--windows", type=float, nargs="+", default=[10.0],
        help="least encoder windows (s) every clip is also decoded in, as the dialog asks",
    )  # fmt: skip
    i = sub.add_parser("install")
    i.add_argument("adapter", type=Path)
    args = parser.parse_args(argv)
    commands = {"collect": collect, "train": train, "evaluate": evaluate, "install": install}
    commands[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
