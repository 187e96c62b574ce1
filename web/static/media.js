// Media from the server: audio into an AudioWorklet with a jitter buffer, and the newest
// JPEG video preview (decoded off the main thread; older ones are skipped).
import { $, demon, onBinary } from "./core.js";
import { heard } from "./loop.js";

onBinary((buf) => {
  const kind = new Uint8Array(buf, 0, 1)[0];
  if (kind === 86) showVideo(buf); // "V"
  else if (kind === 65) playAudio(buf); // "A": uint32 rate, uint16 channels, int16 frames interleaved
});

function playAudio(buf) {
  const head = new DataView(buf);
  const rate = head.getUint32(1, true), channels = head.getUint16(5, true);
  const pcm = new Int16Array(buf.slice(7));
  const f = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 32768;
  heard(f, channels); // the loop's waveform, before the buffer goes to the worklet
  const a = demon.audio;
  a.frames = (a.frames || 0) + 1;
  a.channels = channels;
  if (!a.node) { if (!a.starting) a.starting = startAudio(rate, channels); return; }
  a.node.port.postMessage(f, [f.buffer]);
}

export async function startAudio(rate, channels) {
  const a = demon.audio;
  if (a.context) return;
  a.context = new AudioContext({ sampleRate: rate || 16000 });
  await a.context.audioWorklet.addModule("/worklet.js");
  a.node = new AudioWorkletNode(a.context, "demon-player", {
    outputChannelCount: [channels || 1], processorOptions: { targetSeconds: 0.3, channels: channels || 1 } });
  a.node.port.onmessage = (e) => {
    a.stats = e.data;
    $("audio-stats").textContent = `played ${(e.data.played / a.context.sampleRate).toFixed(1)} s · underruns ${e.data.underruns}`;
  };
  a.node.connect(a.context.destination);
  await a.context.resume();
}

let videoBusy = false;
async function showVideo(buf) {
  const v = (demon.video = demon.video || { received: 0, drawn: 0, skipped: 0, width: 0, height: 0 });
  v.received++;
  if (videoBusy) { v.skipped++; return; } // a frame is still decoding: this one would only be late
  videoBusy = true;
  try {
    const bitmap = await createImageBitmap(new Blob([buf.slice(1)], { type: "image/jpeg" }));
    const cv = $("video");
    if (cv.width !== bitmap.width || cv.height !== bitmap.height) { cv.width = bitmap.width; cv.height = bitmap.height; }
    cv.getContext("2d").drawImage(bitmap, 0, 0);
    v.width = bitmap.width; v.height = bitmap.height; v.drawn++;
    bitmap.close();
  } finally { videoBusy = false; }
}
