"""Prometheus metrics of the ASR service (beside the per-RPC metrics every service has)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from rivulet.core.metrics import LATENCY_BUCKETS

CHUNK_LATENCY = Histogram(
    "rivulet_asr_chunk_latency_seconds",
    "From a 160 ms chunk of audio being complete in the service to its results being ready "
    "(Triton round trip + decoding).",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
FINAL_LATENCY = Histogram(
    "rivulet_asr_final_latency_seconds",
    "From the end of a stream's audio (client half-close) to its last final result being ready.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
ACTIVE_STREAMS = Gauge(
    "rivulet_asr_active_streams", "StreamingRecognize streams and Recognize calls in progress."
)
OPEN_SEQUENCES = Gauge(
    "rivulet_asr_open_sequences",
    "Triton sequences started and not yet ended (model state held for a stream).",
)
SEQUENCES_RELEASED = Counter(
    "rivulet_asr_sequences_released_total",
    "Triton sequences ended, by why: 'end' (audio finished), 'cancelled' (client went away or the "
    "stream failed: an END with no audio, answered by the model, freed its state at once), "
    "'release_failed' (that END failed, e.g. Triton down: Triton evicts the state after its idle timeout), "
    "'expired' (Triton dropped it after its idle timeout; the stream went on as a fresh sequence).",
    ["reason"],
)
AUDIO_SECONDS = Counter("rivulet_asr_audio_seconds_total", "Seconds of audio recognized.", ["model"])
FINALS = Counter(
    "rivulet_asr_finals_total",
    "Final results, by the pass that wrote them: 'whisper' (second pass), 'streaming' (the second pass "
    "failed, ran late, was refused at the limit or is not deployed), 'empty' (the second pass heard no "
    "speech: no final sent).",
    ["pass"],
)
SECOND_PASS_LATENCY = Histogram(
    "rivulet_asr_second_pass_latency_seconds",
    "From an utterance's endpoint (or the end of audio) to its second-pass transcript being ready; "
    "near 0 when the pass started speculatively at the first silence finished before the endpoint.",
    buckets=LATENCY_BUCKETS,
)
WHISPER_DECODINGS = Counter(
    "rivulet_asr_whisper_decodings_total",
    "Second passes by how Whisper decoded them (the model's answer says): 'cut_window' (the encoder "
    "window cut to the clip), 'whole_window' (Whisper's whole 30 s window from the start: a short "
    "hinted clip, or asked for), 'whole_window_again' (failed Whisper's checks in the cut window and "
    "was decoded again in the whole one: a few hundred ms more on a CPU), 'full_stops_closed' (cut off "
    "while writing full stops after complete words, closed by Whisper's timestamp rule), 'none' (the "
    "VAD heard no speech); fallback='true' when Whisper's temperature fallback wrote the transcript.",
    ["decoding", "fallback"],
)
SPECULATIVE_PASSES = Counter(
    "rivulet_asr_speculative_passes_total",
    "Second passes started at the first silence, by outcome: 'used' (the endpoint followed), "
    "'dropped' (speech resumed first).",
    ["outcome"],
)
LIVE_CAPTIONS = Counter(
    "rivulet_asr_live_captions_total",
    "Interim results written by Whisper (custom_configuration whisper_interims_ms), by outcome: "
    "'shown' (sent to the client), 'refused' (no room at the second-pass admission limit).",
    ["outcome"],
)
PASSES_IN_FLIGHT = Gauge(
    "rivulet_asr_second_passes_in_flight",
    "Second passes whose Triton request has not ended, awaited or not (a dropped speculation, or a "
    "pass its final gave up on, runs to its answer or deadline).",
)
PASS_LIMIT = Gauge(
    "rivulet_asr_second_pass_limit",
    "How many second passes may be in flight now (adapted to how fast Whisper answers, up to "
    "asr_second_pass_max_in_flight); -1: no limit.",
)
PASSES_REFUSED = Counter(
    "rivulet_asr_second_passes_refused_total",
    "Finals whose second pass was not sent because the limit was reached: the streaming model's "
    "hypothesis is the final at once (a speculation waits for room, uncounted).",
)
