// The ring, drawn live: one lane per slot; in each, the request, its own sigma schedule
// with the step it stands on, its progress and sigma; completions slide out as they leave.
import { $, demon, fitCanvas } from "./core.js";

const canvas = $("ring");
const LEAVE_MS = 900;
let previous = new Map(); // request id -> its slot, at the last state
let leaving = []; // { slot, t0 }
let completed = null;

export function onRingState(ring) {
  if (!ring) return;
  const now = performance.now();
  const ids = new Map(ring.slots.map((s) => [s.request, s]));
  const finished = completed === null ? 0 : Math.max(0, (ring.completed ?? 0) - completed);
  let gone = [...previous.values()].filter((s) => !ids.has(s.request));
  gone = gone.slice(0, Math.max(finished, 0)); // left because they finished (not because the ring was rebuilt)
  for (const slot of gone) leaving.push({ slot, t0: now });
  demon.ring.leaving += gone.length;
  completed = ring.completed ?? completed;
  previous = ids;
  latest = ring;
  drawRing();
}

let latest = null; // the newest ring state: what every redraw draws
let animating = false; // one animation loop at a time, however many states arrive
function animate() {
  animating = false;
  drawRing();
}

function drawRing() {
  const ring = latest;
  if (!ring) return;
  const { ctx, w, h } = fitCanvas(canvas);
  const now = performance.now();
  leaving = leaving.filter((l) => now - l.t0 < LEAVE_MS).slice(-3); // the newest few: they must stay readable
  ctx.fillStyle = "#05070a"; ctx.fillRect(0, 0, w, h);
  const depth = Math.max(1, ring.depth, ...ring.slots.map((s) => s.row + 1));
  const exit = 90; // the lane on the right where completions leave
  const laneH = (h - 4) / depth, laneW = w - exit - 8;
  ctx.font = "12px system-ui, sans-serif";
  for (let row = 0; row < depth; row++) {
    const y = 2 + row * laneH;
    ctx.strokeStyle = "#26313c"; ctx.strokeRect(4.5, y + 1.5, laneW, laneH - 3);
    const s = ring.slots.find((slot) => slot.row === row);
    if (!s) { ctx.fillStyle = "#4a5561"; ctx.fillText(`slot ${row}: free`, 12, y + laneH / 2 + 4); continue; }
    const progress = s.steps ? s.step / s.steps : 0;
    ctx.fillStyle = `hsl(${200 - 160 * s.sigma}, 70%, 22%)`;
    ctx.fillRect(5, y + 2, laneW * progress, laneH - 4);
    // its own schedule: sigma against step, the current step marked
    const sx = Math.min(150, 0.4 * laneW), sw = Math.max(30, laneW - sx - 80), top = y + 6, sh = laneH - 12;
    ctx.strokeStyle = "#7fa7c9"; ctx.beginPath();
    s.schedule.forEach((sig, i) => {
      const x = sx + (i / Math.max(1, s.schedule.length - 1)) * sw, yy = top + (1 - sig) * sh;
      i ? ctx.lineTo(x, yy) : ctx.moveTo(x, yy);
    });
    ctx.stroke();
    const cx = sx + (s.step / Math.max(1, s.schedule.length - 1)) * sw, cy = top + (1 - s.sigma) * sh;
    ctx.fillStyle = `hsl(${200 - 160 * s.sigma}, 85%, 60%)`;
    ctx.beginPath(); ctx.arc(cx, cy, 5, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#e8eef4";
    ctx.fillText(`#${s.request}  step ${s.step}/${s.steps}`, 12, y + laneH / 2 + 4);
    ctx.fillText(`σ ${s.sigma.toFixed(2)}`, sx + sw + 10, y + laneH / 2 + 4);
  }
  // completions leaving: they slide out to the right and fade
  for (const l of leaving) {
    const t = (now - l.t0) / LEAVE_MS, y = 2 + Math.min(l.slot.row, depth - 1) * laneH;
    ctx.globalAlpha = 1 - t;
    ctx.fillStyle = "#3fbf7f";
    ctx.fillRect(w - exit + t * (exit - 40), y + laneH / 2 - 9, 38, 18);
    ctx.fillStyle = "#05070a"; ctx.fillText(`#${l.slot.request}`, w - exit + t * (exit - 40) + 3, y + laneH / 2 + 4);
    ctx.globalAlpha = 1;
  }
  ctx.fillStyle = "#9aa7b4";
  ctx.fillText(`done ${ring.completed ?? 0}`, w - exit + 4, h - 6);
  demon.ring.draws++;
  demon.ring.ids = ring.slots.map((s) => s.request);
  demon.ring.steps = ring.slots.map((s) => [s.request, s.step]);
  if (leaving.length && !animating) { animating = true; requestAnimationFrame(animate); }
}

window.addEventListener("resize", drawRing);
