// Reply audio through Web Audio: each chunk is scheduled right where the previous one ends
// (gapless); the first chunk of a reply starts after the smallest safe lead. Progress is reported
// (`onProgress(turnId, playedMs, finished)`) every 250 ms while a reply plays and once when it ends;
// `stop()` (barge-in) drops everything queued at once.
//
// The lead: the audio thread renders in bursts of a few 128-frame quanta (Chromium: ~10 ms,
// `baseLatency`), and `currentTime` is where the last burst ended, so a start posted between two
// bursts is picked up by the next one and plays exactly when scheduled, even one quantum ahead.
// Only a burst that ran while the chunk was being scheduled (a window of microseconds) can make it
// late; `currentTime` read again afterwards shows it, and the start counted is then that burst's
// end, so the page never reports audio earlier than it played.
const LEAD_QUANTA = 2; // a reply's first chunk starts this many render quanta ahead (~6 ms at 44.1 kHz)
const QUANTUM_FRAMES = 128;
const PROGRESS_MS = 250;

export class Player {
  constructor(context, onProgress) {
    this.context = context;
    this.onProgress = onProgress;
    this.sources = [];
    this.turn = null; // {id, startAt, endAt, samples, done, firstArrival}
    this.samplesScheduled = 0;
    this.underruns = 0;
    this.timer = null;
    this.onFirstPlay = null; // (turnId, audioClockTime, arrivalAudioClockTime)
  }

  enqueue(turnId, pcm, sampleRate) {
    if (!this.turn || this.turn.id !== turnId) {
      this.finish(); // a new reply replaces what was left of the old one
      this.turn = { id: turnId, startAt: 0, endAt: 0, samples: 0, done: false, rate: sampleRate };
    }
    const floats = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) floats[i] = pcm[i] / 0x8000;
    const buffer = this.context.createBuffer(1, floats.length, sampleRate);
    buffer.copyToChannel(floats, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const quantum = QUANTUM_FRAMES / this.context.sampleRate;
    const now = this.context.currentTime; // read last, just before the start is posted
    let at = this.turn.endAt;
    if (at < now + quantum) {
      if (this.turn.samples > 0) this.underruns += 1;
      at = now + LEAD_QUANTA * quantum;
    }
    source.start(at);
    at = Math.max(at, this.context.currentTime); // a burst in between: it plays from that burst's end
    if (this.turn.samples === 0) {
      this.turn.startAt = at;
      if (this.onFirstPlay) this.onFirstPlay(turnId, at, now);
    }
    this.turn.endAt = at + buffer.duration;
    this.turn.samples += pcm.length;
    this.samplesScheduled += pcm.length;
    this.sources.push(source);
    source.onended = () => {
      this.sources = this.sources.filter((s) => s !== source);
      this._maybeFinished();
    };
    if (!this.timer) this.timer = setInterval(() => this._report(false), PROGRESS_MS);
  }

  /** The server sent the reply's last audio (REPLY_AUDIO_DONE). */
  audioDone(turnId) {
    if (this.turn && this.turn.id === turnId) {
      this.turn.done = true;
      this._maybeFinished();
    }
  }

  playedMs() {
    if (!this.turn || !this.turn.samples) return 0;
    const played = Math.min(this.context.currentTime, this.turn.endAt) - this.turn.startAt;
    return Math.max(0, Math.round(played * 1000));
  }

  get playing() {
    return this.turn !== null && this.context.currentTime < this.turn.endAt;
  }

  /** Barge-in: silence now, drop the queue; returns the ms of the reply that were heard. */
  stop() {
    const played = this.playedMs();
    for (const source of this.sources) {
      source.onended = null;
      try { source.stop(); } catch (e) { /* not started yet */ }
      source.disconnect();
    }
    this.sources = [];
    this.finish();
    return played;
  }

  finish() {
    if (this.turn) this._report(true);
    this.turn = null;
    clearInterval(this.timer);
    this.timer = null;
  }

  _maybeFinished() {
    if (this.turn && this.turn.done && this.sources.length === 0) this.finish();
  }

  _report(finished) {
    if (this.turn && this.turn.samples) this.onProgress(this.turn.id, this.playedMs(), finished);
  }
}
