// demon's performer page: the stage (what plays, the ring), the pad and meters, and the
// controls, built from what the server sends. Each part lives in its own module.
import { $, connect, demon, element, fromServer, labelOf, onMessage, send, showError, valueChanged } from "./core.js";
import { buildControls } from "./controls.js";
import { buildCurvePicker, onLoopState } from "./loop.js";
import { startAudio } from "./media.js";
import { buildMeters, onCounters } from "./meters.js";
import "./midi.js";
import { buildPad } from "./pad.js";
import { onVideoState, onVoiceState } from "./panels.js";
import { onRingState } from "./ring.js";

// the stage of each pipeline; every one has the curves (music draws them over the loop)
const STAGE = { music: null, voice: "voice-view", video_sr: "video-view" };
const NAMES = { music: "music", voice: "voice conversion", video_sr: "video super-resolution" };

onMessage("hello", (hello) => {
  demon.pipeline = hello.pipeline || "music";
  document.body.dataset.pipeline = demon.pipeline;
  $("pipeline").textContent = NAMES[demon.pipeline] || demon.pipeline;
  for (const id of Object.values(STAGE)) if (id) $(id).hidden = id !== STAGE[demon.pipeline];
  $("loop-title").textContent = demon.pipeline === "music" ? "loop" : "curves";
  buildControls(hello);
  buildCurvePicker();
  buildPad();
  buildMeters();
  showPresets(hello.presets);
  const triggers = $("triggers");
  triggers.innerHTML = "";
  for (const t of hello.triggers) {
    const b = element("button", { text: labelOf(t) });
    b.onclick = () => send({ type: "trigger", name: t });
    triggers.append(b);
  }
});

onMessage("state", (s) => {
  demon.state = s;
  for (const [k, v] of Object.entries(s.values)) {
    if (fromServer(k, s.version) && JSON.stringify(v) !== JSON.stringify(demon.values[k])) valueChanged(k, v);
  }
  onRingState(s.ring);
  onCounters(s);
  onLoopState(s);
  if (demon.pipeline === "voice") onVoiceState(s);
  else if (demon.pipeline === "video_sr") onVideoState(s);
});

onMessage("presets", (msg) => {
  showPresets(msg.names);
  for (const [k, v] of Object.entries(msg.values)) valueChanged(k, v);
});
onMessage("ack", () => { demon.acks++; });
onMessage("error", (msg) => showError(msg.message));

function showPresets(names) {
  const list = $("preset-list");
  list.innerHTML = "";
  for (const n of names || []) list.append(element("option", { text: n }));
}
$("preset-save").onclick = () => send({ type: "preset_save", name: $("preset-name").value });
$("preset-load").onclick = () => send({ type: "preset_load", name: $("preset-list").value });

$("audio-start").onclick = () => {
  const s = demon.state;
  startAudio(s ? s.sample_rate : 16000, s ? s.channels : 1).then(() => demon.audio.context.resume());
};

connect();
