// The microphone: getUserMedia (echo cancellation unless the user wears headphones, noise
// suppression, auto gain) → AudioWorklet → 20 ms frames of 16 kHz PCM handed to
// `onFrame(pcmArrayBuffer, audioClockTime, rms)`. While the page plays a reply, Firefox's echo
// canceller lets only part of the user's speech through (headphones mode hears all of it; README,
// "Barge-in in Firefox").
export class Microphone {
  constructor(context, onFrame) {
    this.context = context;
    this.onFrame = onFrame;
    this.stream = null;
    this.node = null;
    this.settings = null;
  }

  async start(echoCancellation = true) {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    const applied = this.stream.getAudioTracks()[0].getSettings(); // what the browser applied
    this.settings = {
      echoCancellation: applied.echoCancellation,
      noiseSuppression: applied.noiseSuppression,
      autoGainControl: applied.autoGainControl,
    };
    let source;
    try {
      source = this.context.createMediaStreamSource(this.stream);
    } catch (error) {
      // Firefox cannot connect a microphone whose rate differs from the context's: capture in a
      // context of the microphone's own rate (its clock then differs from playback's).
      const rate = this.stream.getAudioTracks()[0].getSettings().sampleRate;
      this.context = new AudioContext({ sampleRate: rate, latencyHint: "interactive" });
      source = this.context.createMediaStreamSource(this.stream);
    }
    await this.context.audioWorklet.addModule("/static/js/capture-worklet.js");
    this.node = new AudioWorkletNode(this.context, "rivulet-capture", { numberOfOutputs: 0 });
    this.node.port.onmessage = (event) => this.onFrame(event.data.pcm, event.data.t, event.data.rms);
    source.connect(this.node);
    this.source = source;
  }

  stop() {
    if (this.node) this.node.port.onmessage = null;
    if (this.source) this.source.disconnect();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = this.node = this.source = this.settings = null;
  }

  get running() {
    return this.stream !== null;
  }
}
