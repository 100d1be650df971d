// AudioWorklet processor: microphone audio at the context's rate → 16 kHz 16-bit PCM in 20 ms
// frames (320 samples). Decimation by a box filter over each output sample's span of input samples
// (an anti-alias low-pass good enough for speech). Each frame is posted (transferred) with the
// audio-clock time its last sample was captured and its RMS level.
const OUT_RATE = 16000;
const FRAME = 320; // 20 ms

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / OUT_RATE;
    this.need = this.ratio; // input samples still to average into the current output sample
    this.acc = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
    this.energy = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.acc += channel[i];
      this.count += 1;
      this.need -= 1;
      if (this.need <= 0) {
        const v = Math.max(-1, Math.min(1, this.acc / this.count));
        this.need += this.ratio;
        this.acc = 0;
        this.count = 0;
        this.energy += v * v;
        this.frame[this.filled++] = v < 0 ? v * 0x8000 : v * 0x7fff;
        if (this.filled === FRAME) {
          const t = currentTime + (i + 1) / sampleRate;
          const rms = Math.sqrt(this.energy / FRAME);
          this.port.postMessage({ pcm: this.frame.buffer, t, rms }, [this.frame.buffer]);
          this.frame = new Int16Array(FRAME);
          this.filled = 0;
          this.energy = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("rivulet-capture", CaptureProcessor);
