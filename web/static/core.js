// The page's shared state and its one websocket: every view reads `demon`, every control
// writes through setParam. Plain ES modules, no build step.

export const $ = (id) => document.getElementById(id);

export const demon = (window.demon = {
  params: {}, values: {}, controls: {}, groups: [], pipeline: null, state: null, errors: [], acks: 0,
  audio: { context: null, node: null, stats: { received: 0, played: 0, underruns: 0, buffered: 0 } },
  midi: { bindings: JSON.parse(localStorage.getItem("demon-midi") || "{}"), learning: null, access: null },
  ring: { draws: 0, ids: [], leaving: 0 },
  meters: {},
});

const listeners = { json: {}, binary: [], value: [] };

/** Call fn(msg) for every JSON message of this type from the server. */
export function onMessage(type, fn) { (listeners.json[type] = listeners.json[type] || []).push(fn); }
/** Call fn(ArrayBuffer) for every binary frame. */
export function onBinary(fn) { listeners.binary.push(fn); }
/** Call fn(name, value) whenever a parameter's value changes here or on the server. */
export function onValue(fn) { listeners.value.push(fn); }

export function valueChanged(name, value) {
  demon.values[name] = value;
  for (const fn of listeners.value) fn(name, value);
}

let ws;
export function connect() {
  const token = new URLSearchParams(location.search).get("token");
  ws = new WebSocket(`ws://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => showConnection(true);
  ws.onclose = () => { // what was on its way will never be acked: the next server state wins
    for (const k of Object.keys(sent)) sent[k] = 0;
    showConnection(false);
    setTimeout(connect, 1000);
  };
  ws.onmessage = (e) => {
    if (typeof e.data !== "string") { for (const fn of listeners.binary) fn(e.data); return; }
    const msg = JSON.parse(e.data);
    for (const fn of listeners.json[msg.type] || []) fn(msg);
  };
}

function showConnection(up) {
  const el = $("conn");
  el.textContent = up ? "connected" : "disconnected";
  el.dataset.level = up ? "ok" : "bad";
}

/** Send a message if the socket is open; whether it went. */
export function send(msg) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(msg));
  return true;
}

// A control sends at most every 30 ms per parameter; the last value always goes out.
const pending = {};
const sent = {}; // name -> how many sets of it await their ack
const acked = {}; // name -> the store version its last set made
export function setParam(name, value) {
  valueChanged(name, value);
  if (pending[name]) { pending[name].value = value; return; }
  pending[name] = { value };
  if (send({ type: "set", name, value })) sent[name] = (sent[name] || 0) + 1; // only what went awaits an ack
  setTimeout(() => { const p = pending[name]; delete pending[name]; if (p.value !== value) setParam(name, p.value); }, 30);
}
onMessage("ack", (msg) => { acked[msg.name] = msg.version; sent[msg.name] = Math.max(0, (sent[msg.name] || 0) - 1); });
onMessage("error", () => { for (const k of Object.keys(sent)) sent[k] = 0; }); // a refused set is never acked

/** Whether a state frame's value for `name` is news: not while this page's own change of it is
 * on its way, nor from a frame older than the version that change made. */
export function fromServer(name, version) {
  return !pending[name] && !sent[name] && (acked[name] === undefined || version >= acked[name]);
}

export function showError(message) {
  demon.errors.push(message);
  $("error").textContent = message;
}

/** A number as a performer reads it: fixed decimals for the parameter's range, so it does not jitter in width. */
export function fmt(v, p) {
  if (typeof v !== "number") return String(v);
  if (!p || p.type === "int" || p.min === null) return Number.isInteger(v) ? String(v) : v.toFixed(2);
  const span = p.max - p.min;
  return v.toFixed(span <= 2 ? 3 : span <= 50 ? 2 : 1);
}

/** The canvas's drawing buffer matched to its size on the page (and the screen's pixel ratio). */
export function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * ratio)), h = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, w: canvas.clientWidth, h: canvas.clientHeight };
}

export function element(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("aria-") || k.startsWith("data-") || k === "role" || k === "for") el.setAttribute(k, v);
    else el[k] = v;
  }
  el.append(...children);
  return el;
}

// When a change is heard, by propagation class and pipeline (DESIGN.md, "Propagation classes").
const REQUEST_ONSET = { music: "loop", voice: "chunk", video_sr: "frame" };
export function onsetLabel(propagation) {
  if (propagation === "step" || propagation === "frame") return "tick";
  if (propagation === "output") return "block";
  return REQUEST_ONSET[demon.pipeline] || "request";
}

export const isNumeric = (p) => p && (p.type === "float" || p.type === "int");

/** How a parameter is named on the page. */
export const labelOf = (name) => name.replace(/_/g, " ");

/** The value at fraction f of a numeric parameter's range (whole numbers for an int). */
export function fromFraction(p, f) {
  const v = p.min + Math.min(1, Math.max(0, f)) * (p.max - p.min);
  return p.type === "int" ? Math.round(v) : v;
}
export const toFraction = (p, v) => (p.max > p.min ? (v - p.min) / (p.max - p.min) : 0);
