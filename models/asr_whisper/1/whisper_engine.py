"""Whisper decoding for Rivulet's second ASR pass (CTranslate2 through faster-whisper's helpers).

Used by the Triton python model next to it (`model.py`) and, in-process, by `bench/` to measure the
bare model on the same audio. No I/O, no Triton: a batch of (audio, options) in, one dict per item out.
Its siblings hold the rest by concept: `whisper_hints` (the phrases' forms ranked and force-scored),
`whisper_checks` (Whisper's own checks, the fallback, loops and late segments dropped) and
`whisper_text` (written forms, loops and token budgets as pure functions).

- The encoder window is max(clip + `tail_pad_s`, `min_window_s`) seconds, capped at 30 s (Whisper's
  window). Whisper was trained on 30 s windows: cut shorter it is faster (the encoder's cost grows
  with the window) but may write worse transcripts, and below about 10 s it loops. A transcript
  decoded in a cut window that fails Whisper's own checks (cut off without its end token, compression
  ratio over 2.4, mean log-probability under -1 on what is not silence) is decoded again in the
  whole 30 s window, and a clip under 2 s (a lone word, where the cut window mishears) gets the whole
  window unless its request asks otherwise: the served model's 10 s floor costs speed only where
  the cut window works (the measured trade-off is in the ASR README). A request may ask for
  another least window (`window_s`, Riva custom_configuration `second_pass_window_s`): a batch is
  encoded with the largest window any of its clips needs. The window after the clip is padded in
  the normalised log-mel domain with 0.0, as faster-whisper's `transcribe()` pads it (padding with
  the log-mel of silence instead made Whisper write "Thank you for watching." on isolated digits).
  A timestamped transcript cut off only because Whisper wrote punctuation after its words ("What time
  is it?" and "." until the budget ran out) is not decoded again when Whisper's timestamp rule after
  the words says they are complete (`whisper_checks`): one decoder step instead of the whole window.
- Free transcripts are decoded in Whisper's timestamped mode (`timestamps=True`), as its own
  `transcribe()` does: with a beam it is far more accurate on spelled letters and digit strings
  than the untimed mode. Segments that start after the end of the audio (written over the silent
  padding) are dropped. Hinted decoding (below) stays untimed, so that the free n-best and the
  phrases' forced scores are one measure.
- A batch is encoded once; every item is padded to the longest window in the batch.
- `phrases` (Riva speech_contexts: text + boost) bias the choice. Each phrase's written forms
  ("five", "Five", "Five.", "5") are ranked by the first decoding step's distribution (plus their
  bonus), and only those whose opening can still beat the beam's best are kept (the first token's
  log-probability, and the second's where the first is Whisper's likeliest: " What about" is not
  forced on "What is on my shopping list"); the best `max_phrase_candidates` are scored exactly by
  forced decoding (one batched decoder call per form length gives every forced token's
  log-probability and the end token's), beside the beam's n-best. Every forced form is a decoder call
  of its own over the encoder window (CTranslate2 computes the cross-attention keys per batch item:
  ~6 ms in the 10 s window, ~25 ms in the 30 s one, on these cores), so forms that cannot win are
  not forced. Unless the set is closed, each forced form is also continued by
  Whisper's greedy decoding, so that an answer that goes on after the phrase ("four people") can be
  heard whole. A candidate gains `boost * boost_scale` nats for each boosted phrase it holds.
  `closed=True` allows only the phrases (the answer is one of them). All candidates are compared by
  one measure: the sum of token log-probabilities, the end token included.
- CTranslate2's `generate` returns at most `max_length // 2` tokens: every budget here is counted in
  tokens and doubled for it (`_max_length`).
- A transcript whose end repeats a unit of 1-12 tokens 4 times or more (twice when cut off by
  `max_length` or when it has more tokens than the audio could hold) is Whisper looping ("five six
  five six five six five six"): one copy is kept.
- A free transcript that is too unlikely or too repetitive is decoded again with Whisper's
  temperature fallback (as `transcribe()` does), except on a clip under `SHORT_CLIP_S`: a lone
  word's fallback samples other words ("All right." for "on") and cost up to 1.4 s, five decodes of
  five samples each in the whole window (dev speakers, 200 one-word commands, beam 5: 85.0 % right
  with it, 85.5 % without, p95 676 vs 350 ms a clip; 266 AN4 utterances: unchanged, 83.8 %).
- On the CPU the decoder runs on its own copy of the weights with `decoder_threads` threads each and
  `decoder_parallel` calls at once (CTranslate2's inter_threads): a batch from several streams is
  decoded in that many parts side by side, and a hinted clip's first-step distribution and forced
  scores of different lengths run beside each other. The calls are the same, so are the words.
- Non-speech gives no text: the Silero VAD (shipped in faster-whisper) finds no speech, or Whisper's
  own no-speech probability is high while its transcript is unlikely.
- Every result says how it was decoded (`decoding`: cut_window, whole_window, whole_window_again,
  full_stops_closed, none when the VAD heard no speech; `fallback`: the temperature fallback wrote it),
  which the ASR service counts (`rivulet_asr_whisper_decodings_total`).
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.vad import VadOptions, get_speech_timestamps
from threadpoolctl import ThreadpoolController
from whisper_checks import TranscriptChecks
from whisper_hints import Candidate, Opening, PhraseScoring
from whisper_text import HOP, LOOP_REPEATS, SAMPLE_RATE, generate_max_length, log_softmax, spoken_canon

PAD_VALUE = 0.0  # normalised log-mel after the clip, as transcribe() pads
VAD_EDGE_S = 0.3  # silence the VAD hears around a clip, so a word at its very edge is found
MAX_WINDOW_S = 30.0
# a clip shorter than this is encoded in the whole window unless its request asks otherwise (the
# engine's default `short_clip_s`; a hinted one always): in a cut window the pretrained Whisper
# misplaces a lone word's timestamps, raises its no-speech probability and mishears it ("Last." for
# "left", "Top" for "stop"; dev one-word commands, beam 5: 75 % right in 10 s, 85 % in 30 s)
SHORT_CLIP_S = 2.0
HINTED_NBEST = 5  # free hypotheses the hints choose among
TOKENS_A_SECOND_AT_MOST = 8  # fast spelling: 4 letters a second, 2 tokens each ("S-A")


@dataclass
class DecodeOptions:
    beam_size: int = 1
    num_hypotheses: int = 1
    word_timestamps: bool = False
    phrases: list[tuple[str, float]] = field(default_factory=list)
    closed: bool = False
    window_s: float = 0.0  # the least encoder window for this clip (s); 0: the engine's min_window_s

    @classmethod
    def from_dict(cls, raw: dict) -> DecodeOptions:
        phrases = [(str(p), float(b)) for p, b in raw.get("phrases", [])]
        beam = max(1, min(int(raw.get("beam_size", 1)), 10))
        hyps = max(1, min(int(raw.get("num_hypotheses", 1)), beam))
        window = max(0.0, min(float(raw.get("window_s", 0.0)), MAX_WINDOW_S))
        return cls(
            beam,
            hyps,
            bool(raw.get("word_timestamps", False)),
            phrases,
            bool(raw.get("closed", False)),
            window,
        )


class WhisperEngine(PhraseScoring, TranscriptChecks):
    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        device_index: int = 0,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        min_window_s: float = 30.0,
        tail_pad_s: float = 1.0,
        boost_scale: float = 0.2,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
        vad_filter: bool = True,
        vad_threshold: float = 0.35,
        max_phrase_candidates: int = 4,
        timestamps: bool = True,
        short_clip_s: float = SHORT_CLIP_S,
        decoder_threads: int = 1,
        decoder_parallel: int = 2,
    ) -> None:
        self.max_phrase_candidates = max_phrase_candidates
        self._max_length = 448
        self.whisper = WhisperModel(
            str(model_dir),
            device=device,
            device_index=device_index,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
        # The encoder is one large batch of matrix products and gains from every thread; the decoder's
        # steps are small (tiny.en: d 384), and on the CPU a second thread only adds synchronisation:
        # beam 2 over a dialog request 62 -> 38 ms on one thread, batches of 4 123 -> 88 ms, the same
        # tokens and scores. So on the CPU the decoding (generate, align) runs on a second copy of the
        # weights with `decoder_threads` (int8 tiny.en: ~60 MB more, measured RSS; its replicas share
        # it); 0 or cpu_threads: one copy.
        # Each of `decoder_parallel` calls at once gets its own threads (one replica each, the weights
        # shared): a batch of 8 dialog requests in two halves side by side 161 -> ~90 ms.
        self.encoder = self.whisper.model
        self.parallel = max(1, decoder_parallel) if device == "cpu" else 1
        threads = decoder_threads or cpu_threads
        if device == "cpu" and (threads != cpu_threads or self.parallel > 1):
            self.whisper.model = ctranslate2.models.Whisper(
                str(model_dir), device=device, compute_type=compute_type, intra_threads=threads,
                inter_threads=self.parallel,
            )  # fmt: skip
        self.model = self.whisper.model  # decoding: generate, align (find_alignment uses it too)
        self._pool = ThreadPoolExecutor(self.parallel, "whisper-decode") if self.parallel > 1 else None
        ctranslate2.set_random_seed(0)  # the fallback's sampling repeats itself
        self.tokenizer = Tokenizer(
            self.whisper.hf_tokenizer, self.model.is_multilingual, task="transcribe", language="en"
        )
        self.prompt = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        # the hints' written forms (a few hundred with the lead-ins) recur request after request
        self._form_tokens = lru_cache(maxsize=8192)(lambda form: tuple(self.tokenizer.encode(form)))
        # free transcription in Whisper's timestamped mode (how it was mostly trained): far more
        # accurate on spelled letters and digits with a beam; phrase scoring stays untimed
        self.free_prompt = list(self.tokenizer.sot_sequence) if timestamps else self.prompt
        self.min_window_s, self.tail_pad_s, self.short_clip_s = min_window_s, tail_pad_s, short_clip_s
        self._blas = ThreadpoolController()  # numpy's BLAS, for the features
        self.boost_scale = boost_scale
        self.no_speech_threshold, self.logprob_threshold = no_speech_threshold, logprob_threshold
        self.vad_options = (
            VadOptions(threshold=vad_threshold, min_speech_duration_ms=90) if vad_filter else None
        )

    @classmethod
    def from_parameters(
        cls, weights: str | Path, params: dict[str, str], *, gpu: bool = False, device_index: int = 0
    ) -> WhisperEngine:
        """The engine `config.pbtxt`'s parameters describe (their string values; a missing one takes
        its default): what the Triton model loads, and what benches load to measure it."""
        return cls(
            weights,
            device="cuda" if gpu else "cpu",
            device_index=device_index if gpu else 0,
            compute_type=params.get("compute_type", "float16" if gpu else "int8"),
            cpu_threads=int(params.get("cpu_threads", "2")),
            decoder_threads=int(params.get("decoder_threads", "1")),
            decoder_parallel=int(params.get("decoder_parallel", "2")),
            min_window_s=float(params.get("min_window_s", "10")),
            short_clip_s=float(params.get("short_clip_s", str(SHORT_CLIP_S))),
            timestamps=params.get("timestamps", "true").lower() == "true",
            boost_scale=float(params.get("boost_scale", "0.2")),
        )

    def warm_up(self) -> None:
        """Load the VAD and run the model once, so the first user does not pay for it."""
        self.has_speech(np.zeros(SAMPLE_RATE, dtype=np.float32))
        _ = self._spells_word  # the punctuation check's vocabulary, listed now (~0.2 s)
        noise = np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE).astype(np.float32)
        feats, _ = self.features([noise])
        encoded = self.encoder.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True)
        self.model.generate(encoded, [self.prompt], max_length=8)

    # -- features --------------------------------------------------------------------------------
    def window_samples(self, n_samples: int, min_window_s: float = 0.0) -> int:
        """The encoder window for a clip: max(clip + tail, least), capped at 30 s. The least is the
        request's `min_window_s`, else the engine's, which clips under `short_clip_s` do not get."""
        short = n_samples < self.short_clip_s * SAMPLE_RATE
        least = min_window_s or (MAX_WINDOW_S if short else self.min_window_s)
        seconds = min(max(n_samples / SAMPLE_RATE + self.tail_pad_s, least), MAX_WINDOW_S)
        return int(seconds * SAMPLE_RATE) // HOP * HOP

    @staticmethod
    def _least_window(clip: np.ndarray, opts: DecodeOptions) -> float:
        """The request's least window; else the whole one for a hinted clip under `SHORT_CLIP_S` (an
        expected short answer: with the command list as hints the 10 s floor cost the adapted model
        1.5 points on the tune speakers, 99.0 → 97.5 %, where free lone words lost 1.0); else 0, the
        engine's rules."""
        if opts.window_s:
            return opts.window_s
        return MAX_WINDOW_S if opts.phrases and len(clip) < SHORT_CLIP_S * SAMPLE_RATE else 0.0

    def features(
        self, clips: list[np.ndarray], windows: list[float] | None = None
    ) -> tuple[np.ndarray, list[int]]:
        """[B, n_mels, frames] for clips padded to one window (the largest any of them needs, each with
        its least window from `windows`, 0 for the engine's); the frames each clip really has."""
        window = max(
            self.window_samples(len(c), w) for c, w in zip(clips, windows or [0.0] * len(clips), strict=True)
        )
        batch, frames = [], []
        # on one BLAS thread wherever the engine runs, as in tritonserver's stubs (OMP_NUM_THREADS=1):
        # the features' last bits (1e-7, numpy's mel projection) depend on the BLAS threads and decide
        # some borderline beams (4 of 80 held-out AN4 clips), so served and in-process transcripts
        # are the same words only this way
        with self._blas.limit(limits=1, user_api="blas"):
            for clip in clips:
                clip = clip[:window]
                feats = self.whisper.feature_extractor(clip)[:, : window // HOP]
                # the rest of the window padded as transcribe() pads it
                padded = np.full((feats.shape[0], window // HOP), PAD_VALUE, dtype=np.float32)
                padded[:, : feats.shape[1]] = feats
                batch.append(padded)
                frames.append(min(len(clip) // HOP + 1, window // HOP))
        return np.ascontiguousarray(np.stack(batch).astype(np.float32)), frames

    def has_speech(self, clip: np.ndarray) -> bool:
        """Whether the VAD hears speech anywhere in the clip. The clip is heard between stretches of
        silence: Silero misses a word cut off by the clip's edge (a one-second command clip whose
        "right" runs to its last sample), which it finds once the word has silence around it."""
        if self.vad_options is None or len(clip) == 0:
            return len(clip) > 0
        edge = int(VAD_EDGE_S * SAMPLE_RATE)
        return bool(get_speech_timestamps(np.pad(clip, (edge, edge)), self.vad_options))

    # -- decoding --------------------------------------------------------------------------------

    def _candidates(
        self, encoded: np.ndarray, frames: int, result, opts: DecodeOptions, opening: Opening | None = None
    ) -> list[Candidate]:
        eot = self.tokenizer.eot
        cands = []
        if not opts.closed:
            for k, raw in enumerate(result.sequences_ids):
                greedy = opts.beam_size == 1 and len(result.logits)
                steps = [np.asarray(x) for x in result.logits[k]] if greedy else []
                looped = len(raw) >= self._max_length  # no end token: cut off (Whisper looping)
                if steps:  # greedy: the exact sum, the end token included
                    pairs = zip(steps, [*raw, eot], strict=False)
                    logprob = sum(float(log_softmax(step)[t]) for step, t in pairs)
                else:  # beam search returns no logits: its score is the mean log-probability
                    logprob = float(result.scores[k]) * (len(raw) + 1)
                tokens = self._spoken_tokens(list(raw), frames)
                # more tokens than the audio could hold ("see you next time" three times over a
                # 0.2 s "two") is Whisper looping too, though it ended
                crowded = len(tokens) > TOKENS_A_SECOND_AT_MOST * frames * HOP / SAMPLE_RATE + 3
                tokens = self._trim_spoken_loop(tokens, 2 if looped or crowded else LOOP_REPEATS)
                cands.append(Candidate(tokens, self.tokenizer.decode(tokens), logprob, scored=len(raw) + 1))
        boosts: dict[str, float] = {}
        for phrase, boost in opts.phrases:
            key = spoken_canon(phrase)
            if key:
                boosts[key] = max(boosts.get(key, -math.inf), boost)
        for cand in cands:
            cand.bonus = self._bonus(cand.text, boosts)
        if boosts:
            # a phrase can win only if its first token's log-probability plus its bonus beats the
            # best free transcript's whole score: the others are not worth scoring
            bound = max((c.score for c in cands), default=-math.inf)
            seen = {tuple(c.tokens) for c in cands}
            heard = max(cands, key=lambda c: c.logprob).text if cands else ""
            for cand in self._phrase_candidates(encoded, result, boosts, opts, seen, bound, heard, opening):
                cand.bonus = self._bonus(cand.text, boosts)
                cands.append(cand)
        return sorted(cands, key=lambda c: c.score, reverse=True)

    def decode(self, requests: list[tuple[np.ndarray, DecodeOptions]]) -> list[dict]:
        out: list[dict | None] = [None] * len(requests)
        live = []
        heard = list((self._pool.map if self._pool else map)(self.has_speech, [c for c, _ in requests]))
        for i, speech in enumerate(heard):
            if speech:
                live.append(i)
            else:
                out[i] = {"hypotheses": [], "no_speech_prob": 1.0, "words": [], "reason": "vad"}
                out[i].update(decoding="none", fallback=False)
        if live:
            feats, frames = self.features(
                [requests[i][0] for i in live], [self._least_window(*requests[i]) for i in live]
            )
            encoded = np.array(self.encoder.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
            groups: dict[tuple[int, int, bool], list[int]] = {}
            redo: list[int] = []  # decoded in a cut window that failed: decoded again in the whole one
            cut = feats.shape[-1] * HOP < MAX_WINDOW_S * SAMPLE_RATE
            for j, i in enumerate(live):
                o = requests[i][1]
                if o.phrases and not o.closed and o.num_hypotheses < HINTED_NBEST:
                    # an n-best for the hints to choose in ("Four people." below "For people.")
                    o = replace(o, beam_size=HINTED_NBEST, num_hypotheses=HINTED_NBEST)
                    requests[i] = (requests[i][0], o)
                # hinted decoding is untimed: its free candidates and the phrases' forced scores
                # must be one measure
                key = (max(o.beam_size, o.num_hypotheses), o.num_hypotheses, not o.phrases)
                groups.setdefault(key, []).append(j)
            for (beam, n, free), members in groups.items():
                longest = max(len(requests[live[j]][0]) for j in members) / SAMPLE_RATE
                # tokens: about 4 a second of speech (spelled letters are 2 each: "U-M"), and room
                # for the timestamps; more only lets Whisper loop or invent on short clips
                self._max_length = int(12 + 4 * longest) + (4 if free else 0)
                prompt = self.free_prompt if free else self.prompt
                # a hinted clip's phrases are ranked by the first step's distribution, which beam search
                # does not return: computed beside the beam
                openings = (
                    [self._submit(self._first_step, encoded[j : j + 1]) for j in members]
                    if not free and beam > 1
                    else [None] * len(members)
                )
                results = self._generate(
                    encoded[members], [prompt] * len(members), beam_size=max(beam, n), num_hypotheses=n,
                    return_scores=True, return_no_speech_prob=True, return_logits_vocab=beam == 1,
                    max_length=generate_max_length(self._max_length),
                )  # fmt: skip
                for j, result, opening in zip(members, results, openings, strict=True):
                    i = live[j]
                    decoding = "cut_window" if cut else "whole_window"
                    if cut and self._needs_whole_window(result, unlikely_counts=free):
                        ended = self._words_before_punctuation(encoded[j : j + 1], result, frames[j], prompt)
                        if ended is None:
                            redo.append(i)  # decoded again below, in the whole window
                            continue
                        result, decoding = ended, "full_stops_closed"
                    short = len(requests[i][0]) < SHORT_CLIP_S * SAMPLE_RATE
                    checked = result
                    if free and n == 1 and not short:  # a lone word's fallback only guesses
                        result = self._with_fallback(encoded[j : j + 1], result, prompt)
                    opening = opening.result() if opening is not None else None
                    out[i] = self._finish(encoded[j : j + 1], frames[j], result, requests[i][1], opening)
                    out[i].update(decoding=decoding, fallback=result is not checked)
            if redo:
                again = [(requests[i][0], replace(requests[i][1], window_s=MAX_WINDOW_S)) for i in redo]
                for i, decoded in zip(redo, self.decode(again), strict=True):
                    out[i] = {**decoded, "decoding": "whole_window_again"}
        return out  # type: ignore[return-value]

    def _submit(self, fn, *args):
        """`fn(*args)` beside the caller (a future), or at once (a done future) without parallel calls."""
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        done: Future = Future()
        done.set_result(fn(*args))
        return done

    def _generate(self, encoded: np.ndarray, prompts: list[list[int]], **options) -> list:
        """`generate` over a batch of encodings, in `parallel` parts side by side."""
        parts = min(self.parallel, len(prompts))
        if parts < 2:
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
            return self.model.generate(view, prompts, **options)
        bounds = np.linspace(0, len(prompts), parts + 1).astype(int)

        def part(k: int) -> list:
            a, b = bounds[k], bounds[k + 1]
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[a:b]))
            return self.model.generate(view, prompts[a:b], **options)

        return [r for chunk in self._pool.map(part, range(parts)) for r in chunk]

    def _finish(
        self, encoded: np.ndarray, frames: int, result, opts: DecodeOptions, opening: Opening | None = None
    ) -> dict:
        cands = self._candidates(encoded, frames, result, opts, opening)
        best = cands[0] if cands else None
        avg = best.logprob / best.scored if best else -math.inf
        nsp = float(result.no_speech_prob)
        # what Whisper wrote freely may be an expected phrase too ("No." for "no"): that it won as
        # the beam's rather than the forced phrase's is a hair's breadth of score, not evidence
        expected = best is not None and spoken_canon(best.text) in {spoken_canon(p) for p, _ in opts.phrases}
        if (
            best is None
            or not best.text.strip()
            # Whisper's own rule, for what it wrote freely; an expected phrase passed the VAD already
            or (best.source == "beam" and not expected and self._silent(nsp, avg))
        ):
            return {"hypotheses": [], "no_speech_prob": nsp, "words": [], "reason": "no_speech"}
        hypotheses = [
            {"text": c.text.strip(), "logprob": c.logprob, "score": c.score, "tokens": c.scored,
             "source": c.source}
            for c in cands[: max(opts.num_hypotheses, 1)]
        ]  # fmt: skip
        words = []
        if opts.word_timestamps:
            view = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
            for w in self.whisper.find_alignment(self.tokenizer, [best.tokens], view, frames)[0]:
                words.append([w["word"], float(w["start"]), float(w["end"]), float(w["probability"])])
        return {"hypotheses": hypotheses, "no_speech_prob": nsp, "words": words, "reason": ""}
