// Plays PCM chunks posted from the page through a jitter buffer: playback starts (and
// restarts after an underrun) only once `target` seconds are buffered.
class DemonPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.buf = new Float32Array(sampleRate * 16);
    this.read = 0; this.write = 0;
    this.target = Math.round(sampleRate * (options.processorOptions.targetSeconds || 0.3));
    this.playing = false;
    this.stats = { received: 0, played: 0, underruns: 0, overflows: 0, buffered: 0 };
    this.port.onmessage = (e) => this.push(e.data);
    this.lastReport = 0;
  }
  push(chunk) {
    const free = this.buf.length - (this.write - this.read);
    if (chunk.length > free) { this.stats.overflows++; return; }
    for (let i = 0; i < chunk.length; i++) this.buf[(this.write + i) % this.buf.length] = chunk[i];
    this.write += chunk.length;
    this.stats.received += chunk.length;
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    const have = this.write - this.read;
    if (!this.playing && have >= this.target) this.playing = true;
    if (this.playing && have < out.length) { this.playing = false; this.stats.underruns++; }
    if (this.playing) {
      for (let i = 0; i < out.length; i++) out[i] = this.buf[(this.read + i) % this.buf.length];
      this.read += out.length;
      this.stats.played += out.length;
    } else {
      out.fill(0);
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (currentTime - this.lastReport > 0.25) {
      this.lastReport = currentTime;
      this.stats.buffered = this.write - this.read;
      this.port.postMessage(this.stats);
    }
    return true;
  }
}
registerProcessor("demon-player", DemonPlayer);
