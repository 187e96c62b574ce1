// The XY pad: any two numeric parameters (prompt blend x guidance where the pipeline has a
// prompt blend), dragged together; arrows move the point from the keyboard.
import { $, demon, element, fitCanvas, fmt, fromFraction, isNumeric, labelOf, onValue, setParam, toFraction } from "./core.js";

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
  axes.y = [saved("y"), y, ...names].find((n) => names.includes(n) && n !== axes.x); // never the same as x
  for (const [axis, select] of [["x", $("pad-x")], ["y", $("pad-y")]]) {
    select.innerHTML = "";
    for (const n of names) select.append(element("option", { value: n, text: labelOf(n) }));
    select.value = axes[axis];
    select.onchange = () => {
      const other = axis === "x" ? "y" : "x";
      if (select.value === axes[other]) { axes[other] = axes[axis]; $(`pad-${other}`).value = axes[other]; } // swap
      axes[axis] = select.value;
      for (const a of ["x", "y"]) localStorage.setItem(`demon-pad-${demon.pipeline}-${a}`, axes[a]);
      drawPad();
    };
  }
  drawPad();
}


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
  const x = toFraction(px, vx) * w, y = h - toFraction(py, vy) * h;
  ctx.strokeStyle = "#f5a62366"; ctx.setLineDash([4, 4]);
  ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = "#f5a623"; ctx.beginPath(); ctx.arc(x, y, 9, 0, 2 * Math.PI); ctx.fill();
  ctx.fillStyle = "#c9d4de"; ctx.font = "13px system-ui, sans-serif";
  const xText = `${labelOf(axes.x)} ${fmt(vx, px)} →`;
  ctx.fillText(xText, w - ctx.measureText(xText).width - 6, h - 6);
  ctx.fillText(`↑ ${labelOf(axes.y)} ${fmt(vy, py)}`, 6, 16);
  pad.setAttribute("aria-valuetext", `${axes.x} ${fmt(vx, px)}, ${axes.y} ${fmt(vy, py)}`);
  demon.pad = { x: axes.x, y: axes.y };
}

function move(fx, fy) {
  for (const [name, f] of [[axes.x, fx], [axes.y, fy]]) {
    const v = fromFraction(demon.params[name], f);
    if (v !== demon.values[name]) setParam(name, v); // only the axis that moved is sent
  }
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
  // a fiftieth of each range (Shift: a two-hundredth), and at least one whole step of an integer
  const step = (p) => Math.max(e.shiftKey ? 0.005 : 0.02, p.type === "int" ? 1 / (p.max - p.min) : 0);
  const px = demon.params[axes.x], py = demon.params[axes.y];
  move(toFraction(px, demon.values[axes.x]) + d[0] * step(px), toFraction(py, demon.values[axes.y]) + d[1] * step(py));
};

onValue((name) => { if (name === axes.x || name === axes.y) drawPad(); });
window.addEventListener("resize", drawPad);
