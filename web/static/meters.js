// Counters a person reads at a glance: meters with colour thresholds, onsets per
// propagation class, and the raw JSON only behind "details".
import { $, demon, element, onsetLabel } from "./core.js";

// Each meter: where its value is, its full scale, and when it turns amber and red.
// `low: true` meters are bad when they fall (lead, frame rate). `grows` meters are counts:
// red while they went up in the last few seconds, amber once they ever did.
const METERS = {
  music: [
    // the CPU defaults keep a tick near 50 ms (live_params.py); twice that, and loops arrive late
    { key: "tick_p50_ms", label: "tick p50", unit: "ms", max: 300, warn: 100, bad: 250 },
    { key: "tick_p99_ms", label: "tick p99", unit: "ms", max: 600, warn: 200, bad: 450 },
    // audio buffered ahead of the device, against what the feeder aims to keep
    { key: "lead_s", label: "lead", unit: "s", low: true, max: (c) => 2 * (c.lead_target_s || 0.5),
      warn: (c) => 0.75 * (c.lead_target_s || 0.5), bad: (c) => 0.25 * (c.lead_target_s || 0.5) },
    { key: "underflows", label: "underflows", grows: true },
    { key: "rejected_requests", label: "rejected", grows: true },
  ],
  voice: [
    // the latency goal is 60 ms (bench/voice.py); compute must stay well inside a chunk
    { key: "latency_ms", label: "latency", unit: "ms", max: 120, warn: 60, bad: 80 },
    { key: "compute_ms", label: "compute", unit: "ms", max: (c) => c.chunk_ms || 40,
      warn: (c) => 0.5 * (c.chunk_ms || 40), bad: (c) => 0.9 * (c.chunk_ms || 40) },
    { key: "input_overflows", label: "input overflows", grows: true },
    { key: "output_starved", label: "output starved", grows: true },
  ],
  video_sr: [
    { key: "fps", label: "frame rate", unit: "fps", low: true, max: 30, warn: 15, bad: 8 },
    { key: "frame_p99_ms", label: "frame p99", unit: "ms", max: 250, warn: 67, bad: 125 },
    { key: "skipped", label: "skipped frames", grows: true },
    { key: "bad_frames", label: "bad frames", grows: true },
  ],
};
const GROWTH_WINDOW_MS = 5000;

const at = (spec, c) => (typeof spec === "function" ? spec(c) : spec);
const grew = {}; // key -> { value, t } of the last increase

export function levelOf(m, value, c, now) {
  if (value === null || value === undefined) return "idle";
  if (m.grows) {
    const last = grew[m.key];
    if (!last || value < last.value) grew[m.key] = { value, t: -Infinity }; // first seen, or reset: a new baseline
    else if (value > last.value) grew[m.key] = { value, t: now };
    if (value > 0 && now - grew[m.key].t < GROWTH_WINDOW_MS) return "bad";
    return value > 0 ? "warn" : "ok";
  }
  const warn = at(m.warn, c), bad = at(m.bad, c);
  if (m.low) return value <= bad ? "bad" : value <= warn ? "warn" : "ok";
  return value >= bad ? "bad" : value >= warn ? "warn" : "ok";
}

export function buildMeters() {
  const box = $("meters");
  box.innerHTML = "";
  for (const m of METERS[demon.pipeline] || []) {
    const bar = m.grows ? null : element("div", { class: "bar" }, element("div", { class: "fill" }));
    const row = element("div", { class: "meter", "data-key": m.key, "data-level": "idle", role: "meter",
      "aria-label": m.label, "aria-valuemin": 0 },
      element("span", { class: "label", text: m.label }), bar || element("span", { class: "bar-none" }),
      element("span", { class: "reading", text: "–" }));
    box.append(row);
  }
}

export function onCounters(s) {
  const c = s.counters || {};
  const now = performance.now();
  for (const m of METERS[demon.pipeline] || []) {
    const row = document.querySelector(`.meter[data-key="${m.key}"]`);
    if (!row) continue;
    const value = c[m.key];
    const level = levelOf(m, value, c, now);
    row.dataset.level = level;
    demon.meters[m.key] = level;
    const reading = row.querySelector(".reading");
    reading.textContent = value === null || value === undefined ? "–" : `${value}${m.unit ? " " + m.unit : ""}`;
    row.setAttribute("aria-valuenow", value ?? 0);
    if (!m.grows) {
      const max = at(m.max, c);
      row.setAttribute("aria-valuemax", max);
      row.querySelector(".fill").style.width = `${Math.min(100, (100 * (value || 0)) / max)}%`;
    }
  }
  showOnsets(c.onset_ms || {});
  if ($("details").open) $("raw").textContent = JSON.stringify({ counters: s.counters, web: s.web }, null, 1);
}

// the median onset of the parameters of each class, against when that class is heard
function showOnsets(onsets) {
  const byClass = {};
  for (const [name, ms] of Object.entries(onsets)) {
    const p = demon.params[name];
    if (p) (byClass[onsetLabel(p.propagation)] = byClass[onsetLabel(p.propagation)] || []).push(ms);
  }
  const box = $("onsets");
  box.innerHTML = "";
  for (const [cls, values] of Object.entries(byClass)) {
    values.sort((a, b) => a - b);
    const ms = values[Math.floor(values.length / 2)];
    box.append(element("span", { class: "onset-reading", text: `next ${cls}: ${ms >= 1000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms) + " ms"}` }));
  }
  if (!box.childElementCount) box.append(element("span", { class: "onset-reading", text: "no change heard yet" }));
}
