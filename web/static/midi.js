// MIDI learn through the Web MIDI API: the mappings live in this browser (localStorage).
import { $, demon, fromFraction, isNumeric, setParam } from "./core.js";

export function startLearn(name, row) {
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

export function onMidi(data) {
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
  if (!p || p.min === null || !(isNumeric(p) || p.type === "curve")) return;
  const v = fromFraction(p.type === "curve" ? { ...p, type: "float" } : p, value / 127);
  setParam(name, p.type === "curve" ? [v] : v);
}
demon.onMidi = onMidi; // tests feed bytes here where no MIDI device exists
