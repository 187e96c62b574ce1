// demon's performer page: controls built from the parameter registry the server sends.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const wsUrl = `ws://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`;
const $ = (id) => document.getElementById(id);

const demon = (window.demon = {
  params: {}, values: {}, controls: {}, state: null, errors: [], acks: 0,
  audio: { context: null, node: null, stats: { received: 0, played: 0, underruns: 0, buffered: 0 } },
  midi: { bindings: JSON.parse(localStorage.getItem("demon-midi") || "{}"), learning: null, access: null },
});

let ws;
function connect() {
  ws = new WebSocket(wsUrl);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { $("conn").textContent = "connected"; $("conn").className = "good"; };
  ws.onclose = () => { $("conn").textContent = "disconnected"; $("conn").className = "bad"; setTimeout(connect, 1000); };
  ws.onmessage = (e) => (typeof e.data === "string" ? onJson(JSON.parse(e.data)) : onBinary(e.data));
}

function send(msg) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); }

// Sliders send at most every 30 ms per parameter; the last value always goes out.
const pending = {};
function setParam(name, value) {
  demon.values[name] = value;
  if (pending[name]) { pending[name].value = value; return; }
  pending[name] = { value };
  send({ type: "set", name, value });
  setTimeout(() => { const p = pending[name]; delete pending[name]; if (p.value !== value) setParam(name, p.value); }, 30);
}

function onJson(msg) {
  if (msg.type === "hello") { buildControls(msg); showPresets(msg.presets); }
  else if (msg.type === "state") onState(msg);
  else if (msg.type === "presets") { showPresets(msg.names); Object.entries(msg.values).forEach(([k, v]) => showValue(k, v)); }
  else if (msg.type === "ack") demon.acks++;
  else if (msg.type === "error") { demon.errors.push(msg.message); $("error").textContent = msg.message; }
}

// ---- controls from the registry --------------------------------------------------------

function buildControls(hello) {
  const box = $("controls");
  box.querySelectorAll(".param").forEach((el) => el.remove());
  for (const p of hello.params) {
    demon.params[p.name] = p;
    demon.values[p.name] = hello.values[p.name];
    const row = document.createElement("div");
    row.className = "param"; row.dataset.name = p.name; row.title = p.doc;
    const label = document.createElement("label"); label.textContent = p.name;
    const shown = document.createElement("span");
    let input;
    if (p.type === "float" || p.type === "int") {
      input = document.createElement("input"); input.type = "range";
      input.min = p.min; input.max = p.max; input.step = p.type === "int" ? 1 : (p.max - p.min) / 1000;
      input.oninput = () => { const v = Number(input.value); shown.textContent = fmt(v); setParam(p.name, v); };
    } else if (p.type === "choice") {
      input = document.createElement("select");
      for (const c of p.choices) { const o = document.createElement("option"); o.textContent = c; input.append(o); }
      input.onchange = () => setParam(p.name, input.value);
    } else if (p.type === "text") {
      input = document.createElement("input"); input.type = "text"; input.maxLength = 2000;
      input.onchange = () => setParam(p.name, input.value);
    } else if (p.type === "bool") {
      input = document.createElement("input"); input.type = "checkbox";
      input.onchange = () => setParam(p.name, input.checked);
    } else if (p.type === "curve") {
      input = curveEditor(p);
    }
    input.id = "p-" + p.name;
    const learn = document.createElement("button"); learn.textContent = "learn";
    learn.onclick = () => startLearn(p.name, row);
    row.append(label, input, shown, learn);
    box.append(row);
    demon.controls[p.name] = { input, shown, row };
    showValue(p.name, hello.values[p.name]);
  }
  const triggers = $("triggers"); triggers.innerHTML = "";
  for (const t of hello.triggers) {
    const b = document.createElement("button"); b.textContent = t; b.onclick = () => send({ type: "trigger", name: t });
    triggers.append(b);
  }
  drawXY();
}

function fmt(v) { return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v); }

function showValue(name, v) {
  const c = demon.controls[name]; const p = demon.params[name];
  if (!c || pending[name]) return;
  demon.values[name] = v;
  if (p.type === "curve") { c.input.points = v.slice(); c.input.draw(); c.shown.textContent = v.length + " pts"; return; }
  if (p.type === "bool") c.input.checked = v; else if (document.activeElement !== c.input) c.input.value = v;
  c.shown.textContent = p.type === "text" ? "" : fmt(v);
}

// A per-frame curve: drag across the canvas to draw 32 points in the parameter's range.
function curveEditor(p) {
  const canvas = document.createElement("canvas"); canvas.width = 256; canvas.height = 40;
  canvas.points = [];
  const ctx = canvas.getContext("2d");
  canvas.draw = () => {
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, 256, 40); ctx.strokeStyle = "#6cf"; ctx.beginPath();
    const pts = canvas.points.length ? canvas.points : [p.default[0]];
    pts.forEach((v, i) => { const x = pts.length > 1 ? (i / (pts.length - 1)) * 256 : 0; const y = 40 - ((v - p.min) / (p.max - p.min)) * 40; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); if (pts.length === 1) ctx.lineTo(256, y); });
    ctx.stroke();
  };
  let drawing = false;
  const paint = (e) => {
    const r = canvas.getBoundingClientRect();
    if (canvas.points.length !== 32) canvas.points = new Array(32).fill(canvas.points[0] ?? p.default[0]);
    const i = Math.max(0, Math.min(31, Math.round(((e.clientX - r.left) / r.width) * 31)));
    const v = p.min + Math.max(0, Math.min(1, 1 - (e.clientY - r.top) / r.height)) * (p.max - p.min);
    canvas.points[i] = v; canvas.draw();
  };
  canvas.onpointerdown = (e) => { drawing = true; canvas.setPointerCapture(e.pointerId); paint(e); };
  canvas.onpointermove = (e) => { if (drawing) paint(e); };
  canvas.onpointerup = () => { drawing = false; setParam(p.name, canvas.points.slice()); };
  return canvas;
}

// ---- XY pad: x = prompt_blend, y = guidance ----------------------------------------------

const xy = $("xy");
function drawXY() {
  const ctx = xy.getContext("2d"); const g = demon.params.guidance; if (!g) return;
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, xy.width, xy.height);
  const x = (demon.values.prompt_blend ?? 0) * xy.width;
  const y = xy.height - ((demon.values.guidance - g.min) / (g.max - g.min)) * xy.height;
  ctx.fillStyle = "#fa0"; ctx.beginPath(); ctx.arc(x, y, 6, 0, 7); ctx.fill();
  ctx.fillStyle = "#666"; ctx.fillText("A", 4, xy.height - 4); ctx.fillText("B", xy.width - 10, xy.height - 4);
}
let padDown = false;
function padMove(e) {
  const r = xy.getBoundingClientRect(); const g = demon.params.guidance;
  const fx = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
  const fy = Math.max(0, Math.min(1, 1 - (e.clientY - r.top) / r.height));
  setParam("prompt_blend", fx); setParam("guidance", g.min + fy * (g.max - g.min)); drawXY();
}
xy.onpointerdown = (e) => { padDown = true; xy.setPointerCapture(e.pointerId); padMove(e); };
xy.onpointermove = (e) => { if (padDown) padMove(e); };
xy.onpointerup = () => { padDown = false; };

// ---- state: counters, ring, loop --------------------------------------------------------

function onState(s) {
  demon.state = s;
  for (const [k, v] of Object.entries(s.values)) if (JSON.stringify(v) !== JSON.stringify(demon.values[k]) || k in pending) showValue(k, v);
  const c = s.counters || {};
  const brief = { ...c }; delete brief.onset_ms; delete brief.controls;
  $("counters").textContent = JSON.stringify(brief) + "\nonset ms " + JSON.stringify(c.onset_ms || {}) + "\nweb " + JSON.stringify(s.web);
  drawRing(s.ring); drawXY(); drawWave(s);
}

function drawRing(ring) {
  if (!ring) return;
  const cv = $("ring"); const ctx = cv.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cv.width, cv.height);
  const w = cv.width / Math.max(1, ring.depth);
  for (let i = 0; i < ring.depth; i++) { ctx.strokeStyle = "#333"; ctx.strokeRect(i * w + 2, 2, w - 4, cv.height - 4); }
  for (const s of ring.slots) {
    const h = (cv.height - 8) * s.sigma;
    ctx.fillStyle = `hsl(${200 - 160 * s.sigma}, 80%, 55%)`;
    ctx.fillRect(s.row * w + 4, cv.height - 4 - h, w - 8, h);
    ctx.fillStyle = "#fff"; ctx.fillText(`#${s.request} σ ${s.sigma.toFixed(2)}`, s.row * w + 8, 14);
  }
}

// The waveform is drawn from the audio the page receives, placed by loop position.
const wave = { peaks: new Float32Array(900), written: 0 };
function drawWave(s) {
  const cv = $("wave"); const ctx = cv.getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cv.width, cv.height);
  ctx.fillStyle = "#3a7";
  for (let x = 0; x < cv.width; x++) { const h = wave.peaks[x] * cv.height; ctx.fillRect(x, (cv.height - h) / 2, 1, h || 1); }
  if (s.loop_samples) {
    const x = ((s.playhead % s.loop_samples) / s.loop_samples) * cv.width;
    ctx.fillStyle = "#f33"; ctx.fillRect(x, 0, 2, cv.height);
  }
}

function onBinary(buf) {
  const kind = new Uint8Array(buf, 0, 1)[0];
  if (kind === 86) { showVideo(buf); return; } // "V": a JPEG preview
  if (kind !== 65) return; // "A": audio, uint32 rate, uint16 channels, int16 frames interleaved
  const head = new DataView(buf);
  const rate = head.getUint32(1, true), channels = head.getUint16(5, true);
  const pcm = new Int16Array(buf.slice(7));
  const f = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) f[i] = pcm[i] / 32768;
  const frames = f.length / channels;
  demon.audio.frames = (demon.audio.frames || 0) + 1;
  demon.audio.channels = channels;
  const s = demon.state;
  if (s && s.loop_samples) {
    const per = s.loop_samples / wave.peaks.length;
    const start = wave.written % s.loop_samples;
    for (let i = 0; i < frames; i += 64) {
      const x = Math.floor(((start + i) % s.loop_samples) / per);
      let peak = 0; // the loudest channel of the frame
      for (let c = 0; c < channels; c++) peak = Math.max(peak, Math.abs(f[i * channels + c]));
      wave.peaks[x] = Math.min(1, peak * 2);
    }
  }
  wave.written += frames;
  feedAudio(f, rate, channels);
}

// ---- video: the newest JPEG preview, decoded off the main thread; older ones are skipped ----------

let videoBusy = false;
async function showVideo(buf) {
  const v = (demon.video = demon.video || { received: 0, drawn: 0, skipped: 0, width: 0, height: 0 });
  v.received++;
  if (videoBusy) { v.skipped++; return; } // a frame is still decoding: this one would only be late
  videoBusy = true;
  try {
    const bitmap = await createImageBitmap(new Blob([buf.slice(1)], { type: "image/jpeg" }));
    const cv = $("video");
    $("video-view").hidden = false;
    if (cv.width !== bitmap.width || cv.height !== bitmap.height) { cv.width = bitmap.width; cv.height = bitmap.height; }
    cv.getContext("2d").drawImage(bitmap, 0, 0);
    v.width = bitmap.width; v.height = bitmap.height; v.drawn++;
    bitmap.close();
  } finally { videoBusy = false; }
}

// ---- audio: AudioWorklet with a jitter buffer -------------------------------------------

async function startAudio(rate, channels) {
  const a = demon.audio;
  if (a.context) return;
  a.context = new AudioContext({ sampleRate: rate || 16000 });
  await a.context.audioWorklet.addModule("/worklet.js");
  a.node = new AudioWorkletNode(a.context, "demon-player", {
    outputChannelCount: [channels || 1], processorOptions: { targetSeconds: 0.3, channels: channels || 1 } });
  a.node.port.onmessage = (e) => {
    a.stats = e.data;
    $("audio-stats").textContent = `audio: played ${(e.data.played / a.context.sampleRate).toFixed(1)} s, underruns ${e.data.underruns}`;
  };
  a.node.connect(a.context.destination);
  await a.context.resume();
}

function feedAudio(f, rate, channels) {
  const a = demon.audio;
  if (!a.node) { if (!a.starting) { a.starting = startAudio(rate, channels); } return; }
  a.node.port.postMessage(f, [f.buffer]);
}
$("audio-start").onclick = () => {
  const s = demon.state;
  startAudio(s ? s.sample_rate : 16000, s ? s.channels : 1).then(() => demon.audio.context.resume());
};

// ---- presets --------------------------------------------------------------------------------

function showPresets(names) {
  const list = $("preset-list"); list.innerHTML = "";
  for (const n of names || []) { const o = document.createElement("option"); o.textContent = n; list.append(o); }
}
$("preset-save").onclick = () => send({ type: "preset_save", name: $("preset-name").value });
$("preset-load").onclick = () => send({ type: "preset_load", name: $("preset-list").value });

// ---- MIDI learn through the Web MIDI API (mappings kept in this browser) ----------------------

function startLearn(name, row) {
  demon.midi.learning = name;
  document.querySelectorAll(".learning").forEach((el) => el.classList.remove("learning"));
  row.classList.add("learning");
  if (!demon.midi.access && navigator.requestMIDIAccess) {
    navigator.requestMIDIAccess().then((access) => {
      demon.midi.access = access;
      for (const input of access.inputs.values()) input.onmidimessage = (e) => onMidi(e.data);
    }, () => { $("error").textContent = "Web MIDI is not available"; });
  }
}

function onMidi(data) {
  const [status, cc, value] = data;
  if ((status & 0xf0) !== 0xb0) return;
  const key = `${status & 0x0f}:${cc}`;
  const m = demon.midi;
  if (m.learning) {
    for (const k of Object.keys(m.bindings)) if (m.bindings[k] === m.learning) delete m.bindings[k];
    m.bindings[key] = m.learning; m.learning = null;
    localStorage.setItem("demon-midi", JSON.stringify(m.bindings));
    document.querySelectorAll(".learning").forEach((el) => el.classList.remove("learning"));
    return;
  }
  const name = m.bindings[key]; const p = demon.params[name];
  if (!p || p.min === null) return;
  let v = p.min + (value / 127) * (p.max - p.min);
  if (p.type === "int") v = Math.round(v);
  if (p.type === "curve") v = [v];
  setParam(name, v); showValue(name, v);
}
demon.onMidi = onMidi; // tests feed bytes here where no MIDI device exists

connect();
