"""Music corpus without network access: random but musical MIDI rendered by fluidsynth.

Each clip has a tempo (60-180 BPM), a key and scale, a chord progression, bass,
melody and (for some styles) a drum pattern, played by General MIDI instruments and
rendered with Debian's fluidsynth and the fluid-soundfont-gm soundfont. The caption
comes from the generator's own parameters ("lofi piano and drums, 84 bpm, A minor").

The held-out split is by caption parameters: a sixth of the (style, key) pairs never
appear in training, while every style and every key does.

    python -m pipelines.music.data --out data/music --clips 1600 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.files import write_atomic

from ..audio_io import write_audio

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 4, 0), (5, 3, 0, 4), (0, 6, 5, 4), (0, 3, 0, 4))
DRUM_CHANNEL = 9
KICK, SNARE, HAT, OPEN_HAT = 36, 38, 42, 46


@dataclass(frozen=True)
class Style:
    name: str
    lead: int  # General MIDI programs
    chords: int
    bass: int | None
    drums: bool
    chord_rhythm: str  # "block", "half" or "arpeggio"


STYLES = (
    Style("solo piano", 0, 0, None, False, "arpeggio"),
    Style("lofi piano and drums", 4, 4, 33, True, "half"),
    Style("rock guitar and drums", 29, 27, 34, True, "half"),
    Style("string ensemble", 40, 48, 42, False, "block"),
    Style("synth pop", 80, 89, 38, True, "block"),
    Style("jazz organ trio", 16, 16, 32, True, "half"),
    Style("acoustic folk", 73, 25, 32, False, "arpeggio"),
    Style("brass band", 56, 61, 58, True, "block"),
)


@dataclass(frozen=True)
class ClipSpec:
    index: int
    seed: int
    style: str
    tempo: int
    key: str
    scale: str
    progression: tuple[int, ...]
    seconds: float

    @property
    def caption(self) -> str:
        return f"{self.style}, {self.tempo} bpm, {self.key} {self.scale}"

    @property
    def held_out(self) -> bool:
        return is_held_out(self.style, self.key)


def is_held_out(style: str, key: str) -> bool:
    s = next(i for i, st in enumerate(STYLES) if st.name == style)
    return (s + KEYS.index(key)) % 6 == 0


def random_spec(index: int, seed: int, seconds: float) -> ClipSpec:
    rng = random.Random(seed * 1_000_003 + index)
    return ClipSpec(
        index=index,
        seed=rng.randrange(2**31),
        style=rng.choice(STYLES).name,
        tempo=rng.randrange(60, 181),
        key=rng.choice(KEYS),
        scale=rng.choice(tuple(SCALES)),
        progression=rng.choice(PROGRESSIONS),
        seconds=seconds,
    )


def compose(spec: ClipSpec):
    """The clip as a mido MidiFile: lead, chords, bass and drums."""
    import mido

    rng = random.Random(spec.seed)
    style = next(s for s in STYLES if s.name == spec.style)
    scale = SCALES[spec.scale]
    root = 48 + KEYS.index(spec.key)  # C3-based tonic
    tpb = 480
    beats = int(np.ceil(spec.seconds * spec.tempo / 60.0)) + 1
    bars = -(-beats // 4)
    events: list[tuple[int, object]] = []

    def note(channel: int, pitch: int, start_beat: float, length_beats: float, velocity: int) -> None:
        on = int(start_beat * tpb)
        off = int((start_beat + length_beats) * tpb) - 1
        pitch = int(min(max(pitch, 0), 127))
        velocity = int(min(max(velocity + rng.randint(-8, 8), 1), 127))
        events.append((on, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((off, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))

    def degree_pitch(degree: int, octave: int) -> int:
        return root + 12 * (octave + degree // 7) + scale[degree % 7]

    for ch, program in ((0, style.lead), (1, style.chords), (2, style.bass)):
        if program is not None:
            events.append((0, mido.Message("program_change", channel=ch, program=program)))

    lead_degree = rng.randrange(7) + 7
    swing = 0.08 if "lofi" in style.name or "jazz" in style.name else 0.0
    for bar in range(bars):
        chord = spec.progression[bar % len(spec.progression)]
        t0 = bar * 4.0
        triad = [degree_pitch(chord + k, 1) for k in (0, 2, 4)]
        if style.chord_rhythm == "block":
            for p in triad:
                note(1, p, t0, 4.0, 62)
        elif style.chord_rhythm == "half":
            for half in (0.0, 2.0):
                for p in triad:
                    note(1, p, t0 + half, 1.9, 60)
        else:
            for i in range(8):
                note(1, triad[i % 3] + (12 if i % 6 == 5 else 0), t0 + 0.5 * i, 0.5, 58)
        if style.bass is not None:
            pulse = (0.0, 1.0, 2.0, 3.0) if style.drums else (0.0, 2.0)
            for b in pulse:
                fifth = b == 3.0 and rng.random() < 0.3  # the chord's fifth within the scale
                note(2, degree_pitch(chord + (4 if fifth else 0), -1), t0 + b, 0.9, 80)
        # lead: a random walk over the scale, chord tones on strong beats
        rhythm = rng.choice(((1, 1, 1, 1), (0.5,) * 8, (1.5, 0.5, 1, 1), (2, 1, 1), (1, 0.5, 0.5, 2)))
        beat = 0.0
        for length in rhythm:
            if beat % 2 == 0:
                lead_degree = chord + 7 + rng.choice((0, 2, 4))
            else:
                lead_degree = max(5, min(16, lead_degree + rng.choice((-2, -1, 1, 2))))
            offset = swing if beat % 1 == 0.5 else 0.0
            note(0, degree_pitch(lead_degree, 1), t0 + beat + offset, length * 0.9, 88)
            beat += length
        if style.drums:
            for eighth in range(8):
                b = t0 + eighth * 0.5 + (swing if eighth % 2 else 0.0)
                note(DRUM_CHANNEL, HAT if eighth != 7 or rng.random() < 0.7 else OPEN_HAT, b, 0.25, 55)
            for b in (0.0, 2.0) + ((2.5,) if rng.random() < 0.4 else ()):
                note(DRUM_CHANNEL, KICK, t0 + b, 0.25, 96)
            for b in (1.0, 3.0):
                note(DRUM_CHANNEL, SNARE, t0 + b, 0.25, 90)

    mid = mido.MidiFile(ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(spec.tempo), time=0))
    now = 0
    for at, msg in sorted(events, key=lambda e: (e[0], e[1].type != "program_change", e[1].type == "note_on")):
        track.append(msg.copy(time=at - now))
        now = at
    return mid


def render(spec: ClipSpec, out_wav: Path, sample_rate: int) -> None:
    """Compose and render one clip to a mono 16-bit WAV of exactly spec.seconds."""
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (scripts/setup.sh installs it)")
    if not SOUNDFONT.is_file():
        raise RuntimeError(f"soundfont {SOUNDFONT} is missing (package fluid-soundfont-gm)")
    with tempfile.TemporaryDirectory() as tmp:
        mid_path, raw_path = Path(tmp) / "clip.mid", Path(tmp) / "clip.wav"
        compose(spec).save(mid_path)
        subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(raw_path), "-T", "wav",
             "-O", "s16", str(SOUNDFONT), str(mid_path)],
            check=True, capture_output=True, timeout=120,
        )
        audio = read_wav(raw_path)
    n = int(round(spec.seconds * sample_rate))
    audio = np.pad(audio, (0, max(0, n - audio.size)))[:n]
    rms = float(np.sqrt(np.mean(audio**2))) + 1e-9
    audio = np.clip(audio * (0.1 / rms), -1.0, 1.0)  # about -20 dBFS
    write_audio(out_wav, audio, sample_rate)


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV as mono float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        return data.reshape(-1, w.getnchannels()).mean(axis=1)


def _render_one(job: tuple[ClipSpec, str, int]) -> dict:
    spec, out_dir, sample_rate = job
    split = "test" if spec.held_out else "train"
    path = Path(out_dir) / split / f"{spec.index:05d}.wav"
    render(spec, path, sample_rate)
    return {**asdict(spec), "caption": spec.caption, "split": split, "path": str(path.relative_to(out_dir))}


def build_corpus(out: Path, clips: int, seconds: float, seed: int, sample_rate: int, workers: int) -> Path:
    for split in ("train", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
    jobs = [(random_spec(i, seed, seconds), str(out), sample_rate) for i in range(clips)]
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for n, row in enumerate(pool.map(_render_one, jobs, chunksize=8), 1):
            rows.append(row)
            if n % 100 == 0 or n == clips:
                print(f"\rrendered {n}/{clips}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    meta = out / "metadata.jsonl"
    # the corpus is complete only once its metadata exists
    write_atomic(meta, "".join(json.dumps(r) + "\n" for r in rows))
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the music corpus (MIDI rendered with fluidsynth).")
    ap.add_argument("--out", type=Path, default=Path("data/music"))
    ap.add_argument("--clips", type=int, default=1600)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-rate", type=int, default=16_000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    meta = build_corpus(args.out, args.clips, args.seconds, args.seed, args.sample_rate, args.workers)
    print(meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
