// Plays PCM chunks posted from the page through a jitter buffer: playback starts (and
// restarts after an underrun) only once `target` seconds are buffered. Chunks hold
// `channels` interleaved samples per frame; the counters count frames.
class DemonPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.channels = options.processorOptions.channels || 1;
    this.frames = sampleRate * 16; // capacity, in frames
    this.buf = new Float32Array(this.frames * this.channels);
    this.read = 0; this.write = 0; // frames
    this.target = Math.round(sampleRate * (options.processorOptions.targetSeconds || 0.3));
    this.playing = false;
    this.stats = { received: 0, played: 0, underruns: 0, overflows: 0, buffered: 0, channels: this.channels };
    this.port.onmessage = (e) => this.push(e.data);
    this.lastReport = 0;
  }
  push(chunk) {
    const n = chunk.length / this.channels;
    const free = this.frames - (this.write - this.read);
    if (n > free) { this.stats.overflows++; return; }
    const at = (this.write % this.frames) * this.channels;
    const first = Math.min(chunk.length, this.buf.length - at); // copy across the wrap in two pieces
    this.buf.set(chunk.subarray(0, first), at);
    this.buf.set(chunk.subarray(first), 0);
    this.write += n;
    this.stats.received += n;
  }
  process(inputs, outputs) {
    const outs = outputs[0];
    const n = outs[0].length;
    const have = this.write - this.read;
    if (!this.playing && have >= this.target) this.playing = true;
    if (this.playing && have < n) { this.playing = false; this.stats.underruns++; }
    if (this.playing) {
      const ch = this.channels;
      for (let c = 0; c < outs.length; c++) {
        const out = outs[c], src = Math.min(c, ch - 1); // mono is heard on every output channel
        for (let i = 0; i < n; i++) out[i] = this.buf[((this.read + i) % this.frames) * ch + src];
      }
      this.read += n;
      this.stats.played += n;
    } else {
      for (const out of outs) out.fill(0);
    }
    if (currentTime - this.lastReport > 0.25) {
      this.lastReport = currentTime;
      this.stats.buffered = this.write - this.read;
      this.port.postMessage(this.stats);
    }
    return true;
  }
}
registerProcessor("demon-player", DemonPlayer);
