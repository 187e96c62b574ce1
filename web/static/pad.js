// The XY pad: any two numeric parameters (prompt blend x guidance where the pipeline has a
// prompt blend), dragged together; arrows move the point from the keyboard.
import { $, demon, element, fitCanvas, fmt, isNumeric, onValue, setParam } from "./core.js";

const pad = $("xy");
// what each pipeline's pad starts on (the performer's pick is kept in this browser)
const DEFAULT_AXES = { music: ["prompt_blend", "guidance"], voice: ["strength", "guidance"], video_sr: ["strength", "detail"] };
const axes = { x: null, y: null };

export function buildPad() {
  const numeric = Object.values(demon.params).filter((p) => isNumeric(p) && p.max > p.min);
  const names = numeric.map((p) => p.name);
  const prefer = (...options) => options.find((n) => names.includes(n));
  const [x, y] = DEFAULT_AXES[demon.pipeline] || DEFAULT_AXES.music;
  const saved = (axis) => localStorage.getItem(`demon-pad-${demon.pipeline}-${axis}`);
  axes.x = prefer(saved("x"), x, names[0]);
  axes.y = prefer(saved("y"), y, names.find((n) => n !== axes.x));
  for (const [axis, select] of [["x", $("pad-x")], ["y", $("pad-y")]]) {
    select.innerHTML = "";
    for (const n of names) select.append(element("option", { value: n, text: n.replace(/_/g, " ") }));
    select.value = axes[axis];
    select.onchange = () => {
      axes[axis] = select.value;
      localStorage.setItem(`demon-pad-${demon.pipeline}-${axis}`, select.value);
      drawPad();
    };
  }
  drawPad();
}

const frac = (p, v) => (v - p.min) / (p.max - p.min);
const value = (p, f) => { const v = p.min + Math.min(1, Math.max(0, f)) * (p.max - p.min); return p.type === "int" ? Math.round(v) : v; };

export function drawPad() {
  const px = demon.params[axes.x], py = demon.params[axes.y];
  const { ctx, w, h } = fitCanvas(pad);
  ctx.fillStyle = "#05070a"; ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "#1e2630"; ctx.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    ctx.beginPath(); ctx.moveTo((i * w) / 4, 0); ctx.lineTo((i * w) / 4, h); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(0, (i * h) / 4); ctx.lineTo(w, (i * h) / 4); ctx.stroke();
  }
  if (!px || !py) return;
  const vx = demon.values[axes.x], vy = demon.values[axes.y];
  const x = frac(px, vx) * w, y = h - frac(py, vy) * h;
  ctx.strokeStyle = "#f5a62366"; ctx.setLineDash([4, 4]);
  ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = "#f5a623"; ctx.beginPath(); ctx.arc(x, y, 9, 0, 2 * Math.PI); ctx.fill();
  ctx.fillStyle = "#c9d4de"; ctx.font = "13px system-ui, sans-serif";
  const xText = `${axes.x.replace(/_/g, " ")} ${fmt(vx, px)} →`;
  ctx.fillText(xText, w - ctx.measureText(xText).width - 6, h - 6);
  ctx.fillText(`↑ ${axes.y.replace(/_/g, " ")} ${fmt(vy, py)}`, 6, 16);
  pad.setAttribute("aria-valuetext", `${axes.x} ${fmt(vx, px)}, ${axes.y} ${fmt(vy, py)}`);
  demon.pad = { x: axes.x, y: axes.y };
}

function move(fx, fy) {
  setParam(axes.x, value(demon.params[axes.x], fx));
  setParam(axes.y, value(demon.params[axes.y], fy));
}

let down = false;
const fromPointer = (e) => {
  const r = pad.getBoundingClientRect();
  move((e.clientX - r.left) / r.width, 1 - (e.clientY - r.top) / r.height);
};
pad.onpointerdown = (e) => { down = true; pad.setPointerCapture(e.pointerId); fromPointer(e); };
pad.onpointermove = (e) => { if (down) fromPointer(e); };
pad.onpointerup = pad.onpointercancel = () => { down = false; };
pad.onkeydown = (e) => {
  const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
  if (!d) return;
  e.preventDefault();
  const step = e.shiftKey ? 0.005 : 0.02;
  const px = demon.params[axes.x], py = demon.params[axes.y];
  move(frac(px, demon.values[axes.x]) + d[0] * step, frac(py, demon.values[axes.y]) + d[1] * step);
};

onValue((name) => { if (name === axes.x || name === axes.y) drawPad(); });
window.addEventListener("resize", drawPad);
