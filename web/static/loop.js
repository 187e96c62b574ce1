// The playing loop: its waveform (from the audio the page receives, placed by loop
// position), the bars at the tempo, the playhead, where the last loop faded in, and the
// per-frame curves drawn over it. Dragging on it draws the chosen curve.
import { $, demon, fitCanvas, labelOf, onValue, setParam } from "./core.js";
import { CURVE_COLOURS } from "./controls.js";

const COLUMNS = 1024; // waveform resolution across the loop
const CURVE_POINTS = 32; // points a drawn curve gets across the loop
const canvas = $("wave");
const wave = {
  peaks: new Float32Array(COLUMNS), // the loudest sample heard in each column of the loop
  owner: new Int32Array(COLUMNS).fill(-1), // the loop each column was last heard from
  loop: -1, written: 0, column: -1,
  offset: null, // the timeline position of the first frame this page heard
};
let drawing = null; // the curve the pointer paints, or null

export function curveNames() { return Object.values(demon.params).filter((p) => p.type === "curve").map((p) => p.name); }

export function buildCurvePicker() {
  drawing = null;
  const box = $("curve-pick");
  box.querySelectorAll("label").forEach((el) => el.remove());
  for (const name of ["none", ...curveNames()]) {
    const input = document.createElement("input");
    input.type = "radio"; input.name = "curve"; input.value = name; input.checked = name === "none";
    input.onchange = () => { drawing = name === "none" ? null : name; canvas.classList.toggle("painting", !!drawing); };
    const label = document.createElement("label");
    label.append(input, " " + labelOf(name));
    if (CURVE_COLOURS[name]) label.style.color = CURVE_COLOURS[name];
    box.append(label);
  }
}

window.addEventListener("demon-draw-curve", (e) => {
  const radio = document.querySelector(`#curve-pick input[value="${e.detail}"]`);
  if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change")); radio.focus(); }
});

export function onLoopState(s) {
  wave.loop = s.loop_request ?? -1; // columns heard from older loops are drawn dim until played over
  // the audio tapped so far ends at the render position: that ties this page's count of frames
  // to the timeline (re-tied if it drifts by more than a second, e.g. after a reconnect)
  if (s.loop_samples) {
    const offset = s.playhead - wave.written;
    if (wave.offset === null || Math.abs(offset - wave.offset) > s.sample_rate) wave.offset = offset;
  }
  drawLoop();
}

/** Audio as it arrives (media.js): its loudest sample per column, placed by loop position. */
export function heard(samples, channels) {
  const frames = samples.length / channels, s = demon.state;
  if (s && s.loop_samples && wave.offset !== null) {
    const start = wave.offset + wave.written;
    for (let i = 0; i < frames; i += 32) {
      const x = Math.floor((((start + i) % s.loop_samples) / s.loop_samples) * COLUMNS);
      let peak = 0;
      for (let c = 0; c < channels; c++) peak = Math.max(peak, Math.abs(samples[i * channels + c]));
      if (x !== wave.column) { wave.peaks[x] = 0; wave.owner[x] = wave.loop; wave.column = x; } // played over
      wave.peaks[x] = Math.max(wave.peaks[x], Math.min(1, peak));
    }
  }
  wave.written += frames;
}

export function drawLoop() {
  const s = demon.state || {};
  const { ctx, w, h } = fitCanvas(canvas);
  ctx.fillStyle = "#05070a"; ctx.fillRect(0, 0, w, h);
  const loop = s.loop_samples || 0;
  const seconds = loop && s.sample_rate ? loop / s.sample_rate : 0;
  // bars at the tempo, 4/4 from the loop's start, numbered
  const bpm = demon.values.bpm;
  if (seconds && bpm) {
    const bar = 240 / bpm;
    ctx.font = "11px system-ui, sans-serif";
    for (let b = 0; b * bar < seconds; b++) {
      const x = ((b * bar) / seconds) * w;
      ctx.fillStyle = "#1c2530"; ctx.fillRect(x, 0, 1, h);
      ctx.fillStyle = "#5d6b79"; ctx.fillText(String(b + 1), x + 3, 12);
    }
  }
  const mid = h / 2;
  for (let x = 0; x < w; x++) { // the loop playing bright, what older loops left dim
    const i = Math.floor((x / w) * COLUMNS), p = Math.max(0, 1 + Math.log10(wave.peaks[i] + 1e-9) / 3); // 60 dB
    if (p <= 0) continue;
    ctx.fillStyle = wave.owner[i] === wave.loop ? "#3fbf7f" : "#3d4b58";
    ctx.fillRect(x, mid - p * (mid - 4), 1, Math.max(1, 2 * p * (mid - 4)));
  }
  // where the playing loop came in: the old loop fades out over the band, the new one in
  if (loop && s.swap) {
    const x = ((s.swap.at % loop) / loop) * w, bw = Math.max(3, (s.swap.fade / loop) * w);
    const g = ctx.createLinearGradient(x, 0, x + bw, 0);
    g.addColorStop(0, "#33404caa"); g.addColorStop(1, "#3fbf7faa");
    ctx.fillStyle = g; ctx.fillRect(x, 0, bw, h);
    ctx.fillStyle = "#cfe"; ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(`loop #${s.swap.request} in`, Math.min(x + bw + 3, w - 70), h - 6);
  }
  for (const name of curveNames()) drawCurve(ctx, w, h, name);
  if (loop) { // what is heard now: the render position less the audio buffered ahead of the device
    const heardAt = s.playhead - Math.round(((s.counters || {}).lead_s || 0) * (s.sample_rate || 0));
    const x = ((((heardAt % loop) + loop) % loop) / loop) * w;
    ctx.fillStyle = "#ff4d4d"; ctx.fillRect(x - 1, 0, 2, h);
  }
  $("loop-info").textContent = demon.pipeline !== "music" ? "drawn across each request's frames"
    : seconds ? `${seconds.toFixed(1)} s loop${bpm ? ` · ${(seconds / (240 / bpm)).toFixed(1)} bars at ${Math.round(bpm)} bpm` : ""}` +
      (s.next_waiting ? " · next loop ready" : "")
    : "waiting for the first loop";
}

function drawCurve(ctx, w, h, name) {
  const p = demon.params[name], pts = name === drawing && painted ? painted : demon.values[name];
  if (!pts) return;
  const y = (v) => h - 4 - ((v - p.min) / (p.max - p.min)) * (h - 8);
  ctx.strokeStyle = CURVE_COLOURS[name] || "#6cf";
  ctx.lineWidth = drawing === name ? 3 : 1.5;
  ctx.beginPath();
  if (pts.length === 1) { ctx.moveTo(0, y(pts[0])); ctx.lineTo(w, y(pts[0])); } // a constant over the whole loop
  else pts.forEach((v, i) => { const x = (i / (pts.length - 1)) * w; i ? ctx.lineTo(x, y(v)) : ctx.moveTo(x, y(v)); });
  ctx.stroke();
  ctx.lineWidth = 1;
}

// painting a curve: the points under the pointer follow it (and every point it passed over);
// the curve is sent when the pointer lifts, and state frames do not move it meanwhile
let painted = null, lastIndex = null;

function resampled(points, n) {
  if (points.length === 1) return new Array(n).fill(points[0]);
  return Array.from({ length: n }, (_, i) => {
    const t = (i / (n - 1)) * (points.length - 1), k = Math.min(points.length - 2, Math.floor(t));
    return points[k] + (t - k) * (points[k + 1] - points[k]);
  });
}

function paint(e) {
  const p = demon.params[drawing], r = canvas.getBoundingClientRect();
  if (!painted) painted = resampled(demon.values[drawing], CURVE_POINTS);
  const i = Math.round(Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)) * (CURVE_POINTS - 1));
  const v = p.min + Math.min(1, Math.max(0, 1 - (e.clientY - r.top) / r.height)) * (p.max - p.min);
  const from = lastIndex ?? i;
  for (let k = Math.min(from, i); k <= Math.max(from, i); k++) { // fill the points a fast stroke skipped
    painted[k] = from === i ? v : painted[from] + ((k - from) / (i - from)) * (v - painted[from]);
  }
  painted[i] = v;
  lastIndex = i;
  drawLoop();
}
canvas.onpointerdown = (e) => {
  if (!drawing) return;
  canvas.setPointerCapture(e.pointerId);
  painted = null; lastIndex = null;
  paint(e);
};
canvas.onpointermove = (e) => { if (drawing && painted) paint(e); };
canvas.onpointerup = canvas.onpointercancel = () => {
  if (drawing && painted) setParam(drawing, painted.slice());
  painted = null; lastIndex = null;
};

onValue((name) => { if (demon.params[name] && demon.params[name].type === "curve") drawLoop(); });
window.addEventListener("resize", drawLoop);
