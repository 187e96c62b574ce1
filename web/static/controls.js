// The controls, built from the registry the server sends: grouped as a performer thinks,
// each showing its value and unit, typed into, reset by double-click, finely adjusted
// with Shift, and played from the keyboard.
import { $, demon, element, fmt, fromFraction, isNumeric, labelOf, onValue, onsetLabel, setParam, showError, toFraction } from "./core.js";
import { startLearn } from "./midi.js";

export function buildControls(hello) {
  const box = $("controls");
  box.querySelectorAll(".group").forEach((el) => el.remove());
  demon.controls = {};
  demon.params = {}; // a reconnect may bring another pipeline's registry
  demon.groups = hello.groups;
  for (const p of hello.params) { demon.params[p.name] = p; demon.values[p.name] = hello.values[p.name]; }
  for (const g of hello.groups) {
    const params = hello.params.filter((p) => p.group === g.key);
    if (!params.length) continue;
    const section = element("section", { class: "group", "data-group": g.key, "aria-labelledby": "g-" + g.key },
      element("h3", { id: "g-" + g.key, text: g.title }));
    for (const p of params) section.append(controlRow(p));
    box.append(section);
  }
  for (const p of hello.params) showValue(p.name, hello.values[p.name]);
}

const label = labelOf;

function controlRow(p) {
  const labelId = "l-" + p.name;
  const row = element("div", { class: "param " + p.type, "data-name": p.name, title: p.doc });
  const onset = onsetLabel(p.propagation);
  const head = element("span", { class: "name" },
    element("span", { id: labelId, text: label(p.name) }),
    element("span", { class: "unit-inline", text: p.unit && isNumeric(p) ? p.unit : "", "aria-hidden": "true" }),
    element("span", { class: "onset", "data-propagation": p.propagation, text: onset,
      title: `heard at the next ${onset}` }));
  head.ondblclick = () => reset(p);
  let input, shown = null;
  if (isNumeric(p)) {
    input = slider(p, labelId);
    shown = element("input", { id: "v-" + p.name, class: "value", type: "text", inputMode: "decimal",
      autocomplete: "off", spellcheck: false, "aria-label": `${label(p.name)} value${p.unit ? " in " + p.unit : ""}` });
    shown.onkeydown = (e) => { if (e.key === "Escape") { shown.value = fmt(demon.values[p.name], p); shown.blur(); } };
    shown.onchange = () => typed(p, shown); // Enter, or leaving the field
    shown.ondblclick = () => reset(p);
  } else if (p.type === "choice") {
    input = element("select", { "aria-labelledby": labelId });
    for (const c of p.choices) input.append(element("option", { text: c }));
    input.onchange = () => setParam(p.name, input.value);
  } else if (p.type === "text") {
    input = element("input", { type: "text", maxLength: 2000, "aria-labelledby": labelId, spellcheck: false });
    input.onchange = () => setParam(p.name, input.value);
  } else if (p.type === "bool") {
    input = element("input", { type: "checkbox", "aria-labelledby": labelId });
    input.onchange = () => setParam(p.name, input.checked);
  } else if (p.type === "curve") {
    // curves are drawn over the loop's waveform: this picks the one to draw and shows it small
    input = element("button", { class: "curve", "aria-label": `draw ${label(p.name)} over the loop` },
      element("canvas", { width: 120, height: 22, "aria-hidden": "true" }));
    input.onclick = () => window.dispatchEvent(new CustomEvent("demon-draw-curve", { detail: p.name }));
    input.ondblclick = () => reset(p);
    input.onkeydown = (e) => { if (e.key === "Delete" || e.key === "Backspace") reset(p); };
  }
  input.id = "p-" + p.name;
  const unit = element("span", { class: "unit", text: p.unit || "", "aria-hidden": "true" });
  row.append(head, input, shown || element("span", { class: "value-none" }), unit);
  if (isNumeric(p) || p.type === "curve") { // what a controller's fader can play
    const learn = element("button", { class: "learn", text: "MIDI", title: "MIDI learn: move a controller next",
      "aria-label": `MIDI learn ${label(p.name)}` });
    learn.onclick = () => startLearn(p.name, row);
    row.append(learn);
  }
  demon.controls[p.name] = { input, shown, row };
  return row;
}

function reset(p) {
  const v = p.type === "curve" ? p.default.slice() : p.default;
  setParam(p.name, v);
}

function typed(p, field) {
  const text = field.value.trim();
  const v = Number(text);
  let problem = null;
  if (text === "" || !Number.isFinite(v)) problem = `${p.name}: "${text}" is not a number`;
  else if (p.type === "int" && !Number.isInteger(v)) problem = `${p.name}: expected a whole number`;
  else if (v < p.min || v > p.max) problem = `${p.name}: ${v} is outside ${p.min}..${p.max} ${p.unit}`.trim();
  field.classList.toggle("invalid", problem !== null);
  field.setAttribute("aria-invalid", problem !== null);
  if (problem) { showError(problem); return; }
  setParam(p.name, v);
}

// A slider a performer can play: drag anywhere (Shift: ten times finer, from where it is),
// arrows and Page keys step (Shift: finer), Home/End; double-click or Delete resets to the default.
function slider(p, labelId) {
  const el = element("div", { class: "slider", tabIndex: 0, role: "slider", "aria-labelledby": labelId,
    "aria-valuemin": p.min, "aria-valuemax": p.max });
  const fill = element("div", { class: "fill" });
  const mark = element("div", { class: "default" }); // where double-click returns
  el.append(fill, mark);
  const span = p.max - p.min;
  // onto a grid of ten thousand steps from the minimum, so that the ends are exact
  const snap = (v) => {
    if (p.type === "int") return Math.round(Math.min(p.max, Math.max(p.min, v)));
    const q = span / 10000;
    return Math.min(p.max, Math.max(p.min, Number((p.min + Math.round((v - p.min) / q) * q).toPrecision(12))));
  };
  const commit = (v) => { v = snap(v); if (v !== demon.values[p.name]) setParam(p.name, v); };
  el.show = (v) => {
    const f = toFraction(p, v);
    fill.style.width = `${100 * f}%`;
    el.setAttribute("aria-valuenow", v);
    el.setAttribute("aria-valuetext", `${fmt(v, p)} ${p.unit || ""}`.trim());
  };
  mark.style.left = `${(100 * (p.default - p.min)) / (span || 1)}%`;
  const at = (x) => { const r = el.getBoundingClientRect(); return fromFraction(p, (x - r.left) / r.width); };
  let drag = null;
  el.onpointerdown = (e) => {
    el.focus();
    el.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, v: demon.values[p.name], fine: e.shiftKey };
    if (!e.shiftKey) commit(at(e.clientX));
  };
  el.onpointermove = (e) => {
    if (!drag) return;
    if (e.shiftKey !== drag.fine) drag = { x: e.clientX, v: demon.values[p.name], fine: e.shiftKey }; // re-anchor
    if (drag.fine) commit(drag.v + ((e.clientX - drag.x) / el.getBoundingClientRect().width) * span * 0.1);
    else commit(at(e.clientX));
  };
  el.onpointerup = el.onpointercancel = () => { drag = null; };
  el.ondblclick = () => reset(p);
  el.onkeydown = (e) => {
    const step = p.type === "int" ? 1 : span / (e.shiftKey ? 1000 : 100);
    const v = demon.values[p.name];
    const keys = { ArrowRight: v + step, ArrowUp: v + step, ArrowLeft: v - step, ArrowDown: v - step,
      PageUp: v + (p.type === "int" ? Math.max(1, Math.round(span / 10)) : span / 10),
      PageDown: v - (p.type === "int" ? Math.max(1, Math.round(span / 10)) : span / 10), Home: p.min, End: p.max };
    if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); reset(p); return; } // as double-click
    if (!(e.key in keys)) return;
    e.preventDefault();
    commit(keys[e.key]);
  };
  return el;
}

export function showValue(name, v) {
  const c = demon.controls[name], p = demon.params[name];
  if (!c) return;
  if (p.type === "curve") { drawCurvePreview(c.input.firstChild, p, v); return; }
  if (isNumeric(p)) {
    c.input.show(v);
    if (document.activeElement !== c.shown) { c.shown.value = fmt(v, p); c.shown.classList.remove("invalid"); }
  } else if (p.type === "bool") c.input.checked = v;
  else if (document.activeElement !== c.input) c.input.value = v;
}

function drawCurvePreview(canvas, p, points) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = CURVE_COLOURS[p.name] || "#6cf";
  ctx.lineWidth = 2;
  ctx.beginPath();
  const pts = points.length > 1 ? points : [points[0], points[0]];
  pts.forEach((v, i) => {
    const x = (i / (pts.length - 1)) * w, y = h - 2 - ((v - p.min) / (p.max - p.min)) * (h - 4);
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.stroke();
}

export const CURVE_COLOURS = { source_blend: "#4cf", noise_injection: "#f9a23c" };

// every change, from here or from the server, shows on its control (app.js lets through only the server's news)
onValue((name, v) => showValue(name, v));
