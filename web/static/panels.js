// What the other pipelines show on the stage: voice's input meter, latency budget and
// target; video SR's preview with its frame rate and skipped frames.
import { $, demon, fitCanvas } from "./core.js";

const METER_FLOOR_DB = -70;
const LATENCY_GOAL_MS = 60; // bench/voice.py's goal, drawn as a line on the budget

export function onVoiceState(s) {
  const db = s.input_db;
  const f = db === null || db === undefined ? 0 : Math.max(0, Math.min(1, 1 - db / METER_FLOOR_DB));
  const meter = $("input-meter");
  meter.querySelector(".fill").style.width = `${100 * f}%`;
  meter.setAttribute("aria-valuenow", db ?? METER_FLOOR_DB);
  meter.dataset.level = db === null || db === undefined ? "idle" : db > -3 ? "bad" : db > -12 ? "warn" : "ok";
  const gate = demon.values.vad_db;
  if (gate !== undefined) meter.querySelector(".gate").style.left = `${100 * (1 - gate / METER_FLOOR_DB)}%`;
  $("input-db").textContent = db === null || db === undefined ? "silent" : `${db.toFixed(0)} dBFS`;
  $("target").textContent = s.target || "(none)";
  drawBudget(s.counters || {});
}

function drawBudget(l) {
  const { ctx, w, h } = fitCanvas($("budget"));
  ctx.fillStyle = "#05070a"; ctx.fillRect(0, 0, w, h);
  const parts = [["chunk", l.chunk_ms || 0, "#4c8dff"], ["crossfade", l.overlap_ms || 0, "#a66bff"],
    ["compute", l.compute_ms || 0, "#f5a623"]];
  const total = parts.reduce((a, p) => a + p[1], 0);
  const scale = (w - 8) / Math.max(100, total * 1.1);
  let x = 4;
  ctx.font = "12px system-ui, sans-serif";
  for (const [name, ms, colour] of parts) {
    ctx.fillStyle = colour; ctx.fillRect(x, 8, ms * scale, h - 30);
    const text = `${name} ${ms.toFixed(ms < 10 ? 1 : 0)}`;
    if (ctx.measureText(text).width + 8 < ms * scale) { ctx.fillStyle = "#05070a"; ctx.fillText(text, x + 4, 8 + (h - 30) / 2 + 4); }
    x += ms * scale;
  }
  const goal = 4 + LATENCY_GOAL_MS * scale;
  ctx.fillStyle = "#ff4d4d"; ctx.fillRect(goal, 2, 2, h - 20);
  ctx.fillStyle = "#9aa7b4";
  ctx.fillText(`${total.toFixed(1)} ms of a ${LATENCY_GOAL_MS} ms budget (device excluded)`, 4, h - 6);
}

export function onVideoState(s) {
  const c = s.counters || {};
  const v = demon.video || { drawn: 0 };
  $("video-info").textContent = `${c.fps ?? "–"} fps · skipped ${c.skipped ?? 0} · frames ${c.frames_in ?? 0} in, ` +
    `${c.frames_out ?? 0} out · ${s.scale ? s.scale + "x" : ""} · previews drawn ${v.drawn}`;
}
