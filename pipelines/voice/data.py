"""A parallel speech corpus without network access: many synthetic speakers, the same sentences.

Two families of voices, all from a seed, so the corpus regenerates exactly:
- espeak-ng's formant voices. A speaker is an espeak-ng accent (en-us, en-gb,
  en-gb-scotland...) with a voice variant (its own formants, breathiness and pitch
  contour), a base pitch (-p), a speaking rate (-s) and a vocal-tract factor (the
  rendering is resampled so that its formants and pitch move together by 0.88-1.12x, as
  a longer or shorter tract would).
- voices made from recordings of real people: flite's CMU ARCTIC voices (kal16, awb,
  rms, slt) and Festival's diphone and HTS voices (kal, ked, us-slt-hts). Each base voice
  gives several speakers: itself, then copies with their own rate, vocal-tract factor
  and (where the synthesiser takes one) pitch factor. Two base voices, rms and ked, are
  held out whole: no copy of them is ever trained on.

Sentences come from a small grammar, so every speaker says every sentence (parallel data
for conversion and for measuring it against the target's own rendering). Held out: every
fifth espeak-ng speaker, the two held-out voices and every fifth sentence never appear in
training; the test split holds unseen sentences by seen speakers and everything by
unseen speakers.

    python -m pipelines.voice.data --out data/voice --speakers 20 --human-variants 4 --sentences 100

Layout: OUT/<speaker>/<sentence>.wav (16 kHz mono, 16-bit) and OUT/metadata.jsonl, a
line per clip with its speaker's settings, family, the text and the two held-out flags.
"""

from __future__ import annotations

import argparse
import enum
import json
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..audio_io import read_audio, write_audio

SAMPLE_RATE = 16_000
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
# espeak-ng variants that sound like people (not whisper, robots or effects)
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "Annie", "Andy",
            "aunty", "belinda", "benjamin", "david", "ed", "john", "linda", "paul", "robert", "steph", "max",
            "michel", "Lee", "Mike", "norbert")
HELD_OUT_EVERY = 5  # every fifth speaker and sentence is held out

SUBJECTS = ("the old sailor", "my sister", "a tired student", "the quiet engineer", "our neighbour", "the young doctor",
            "a small child", "the baker", "his uncle", "the pilot", "a clever fox", "the singer")
VERBS = ("carried", "painted", "found", "sold", "opened", "borrowed", "cleaned", "hid", "counted", "described")
OBJECTS = ("seven green boxes", "a heavy wooden chair", "the broken window", "three yellow lemons", "an ancient map",
           "the silver bicycle", "two warm loaves", "a letter from home", "the kitchen door", "nine paper birds")
PLACES = ("near the station", "in the garden", "by the river", "at the market", "behind the library",
          "on the hill", "under the bridge", "beside the harbour")
TIMES = ("this morning", "before dinner", "last winter", "on sunday", "at midnight", "after the storm", "every day")


class Synth(enum.Enum):
    """The synthesiser a speaker comes from (its executable)."""

    ESPEAK = "espeak-ng"
    FLITE = "flite"
    FESTIVAL = "text2wave"

    @property
    def family(self) -> str:
        """How bench and the cards group voices: formant voices, or voices made from recordings of people."""
        return "espeak" if self is Synth.ESPEAK else "human"


# (synthesiser, voice, short name, takes a pitch factor) of the voices made from recordings of people
HUMAN_VOICES = ((Synth.FLITE, "kal16", "kal", True), (Synth.FLITE, "awb", "awb", True),
                (Synth.FLITE, "rms", "rms", False), (Synth.FLITE, "slt", "slt", True),
                (Synth.FESTIVAL, "kal_diphone", "kald", False), (Synth.FESTIVAL, "ked_diphone", "ked", False),
                (Synth.FESTIVAL, "cmu_us_slt_arctic_hts", "slthts", False))
HUMAN_HELD_OUT = ("rms", "ked_diphone")  # never trained on, in any variant: targets never seen


@dataclass(frozen=True)
class Speaker:
    name: str
    accent: str  # espeak-ng's accent; the voice's name for flite and Festival
    variant: str  # espeak-ng's voice variant; "" for the others
    pitch: float  # espeak-ng -p (0..99); a pitch factor for flite (1 = its own)
    rate: float  # espeak-ng -s (words per minute); a duration stretch for flite and Festival (1 = its own)
    tract: float  # formants and pitch scaled by this after synthesis
    held_out: bool
    synth: Synth = Synth.ESPEAK

    def command(self, text: str, wav: Path) -> list[str]:
        if self.synth is Synth.FLITE:
            return ["flite", "-voice", self.accent, "--setf", f"duration_stretch={self.rate}", "--setf",
                    f"f0_shift={self.pitch}", "-t", text, "-o", str(wav)]
        if self.synth is Synth.FESTIVAL:  # the text goes in on stdin
            # -scale 0.7: the diphone voices peak near full scale, and resampling would clip them
            settings = f"(begin (voice_{self.accent}) (Parameter.set 'Duration_Stretch {self.rate}))"
            return ["text2wave", "-scale", "0.7", "-eval", settings, "-o", str(wav)]
        return ["espeak-ng", "-v", f"{self.accent}+{self.variant}", "-p", str(self.pitch), "-s", str(self.rate),
                "-w", str(wav), text]


def speakers(count: int, seed: int = 0) -> list[Speaker]:
    """`count` distinct speakers; every HELD_OUT_EVERY-th one is held out."""
    if not 2 <= count <= len(VARIANTS):
        raise ValueError(f"speakers: need 2..{len(VARIANTS)}, got {count}")
    rng = random.Random(seed)
    variants = rng.sample(VARIANTS, count)
    return [Speaker(name=f"spk{i:02d}", accent=rng.choice(ACCENTS), variant=v, pitch=rng.randint(20, 80),
                    rate=rng.randint(140, 190), tract=round(rng.uniform(0.88, 1.12), 3),
                    held_out=i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1)
            for i, v in enumerate(variants)]


def human_speakers(variants: int, seed: int = 0) -> list[Speaker]:
    """`variants` speakers per voice of HUMAN_VOICES: the voice itself, then copies with their own
    rate, vocal-tract factor and pitch factor. Every variant of a HUMAN_HELD_OUT voice is held out."""
    if variants < 0:
        raise ValueError(f"human variants: need 0 or more, got {variants}")
    rng = random.Random(seed + 2)
    out = []
    for synth, voice, short, pitched in HUMAN_VOICES:
        for k in range(variants):
            plain = k == 0
            out.append(Speaker(name=f"{short}{k}", accent=voice, variant="",
                               pitch=1.0 if plain or not pitched else round(rng.uniform(0.85, 1.2), 3),
                               rate=1.0 if plain else round(rng.uniform(0.85, 1.2), 3),
                               tract=1.0 if plain else round(rng.uniform(0.9, 1.1), 3),
                               held_out=voice in HUMAN_HELD_OUT, synth=synth))
    return out


def sentences(count: int, seed: int = 0) -> list[str]:
    """`count` distinct sentences from the grammar, in a fixed order."""
    rng = random.Random(seed + 1)
    out: list[str] = []
    seen = set()
    while len(out) < count:
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)} {rng.choice(TIMES)}"
        if s not in seen:
            seen.add(s)
            out.append(s[0].upper() + s[1:] + ".")
    return out


def sentence_held_out(index: int) -> bool:
    return index % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def render(speaker: Speaker, text: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One utterance through the speaker's synthesiser, resampled to `sample_rate` mono float32."""
    tool = speaker.synth.value
    if shutil.which(tool) is None:
        raise RuntimeError(f"{tool} is not installed (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        done = subprocess.run(speaker.command(text, wav), capture_output=True, text=True, timeout=60,
                              input=text if speaker.synth is Synth.FESTIVAL else None)
        if done.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"{tool} failed for {speaker.name}: {done.stderr.strip()[:200]}")
        if speaker.synth is Synth.FLITE and (rate := wav_rate(wav)) != SAMPLE_RATE:
            # flite answers an unknown voice with its 8 kHz default and exit code 0
            raise RuntimeError(f"flite gave {rate} Hz for voice {speaker.accent!r}: not one of its 16 kHz voices")
        # read at rate/tract and play at rate: every frequency moves by `tract`
        return read_audio(wav, round(sample_rate / speaker.tract))


def wav_rate(wav: Path) -> int:
    with wave.open(str(wav)) as w:
        return w.getframerate()


def build_corpus(out: Path, n_speakers: int, n_sentences: int, seed: int = 0, workers: int = 2,
                 human_variants: int = 0) -> dict:
    spk, sents = speakers(n_speakers, seed) + human_speakers(human_variants, seed), sentences(n_sentences, seed)
    jobs = [(s, i, t) for s in spk for i, t in enumerate(sents)]

    def one(job) -> dict:
        s, i, text = job
        audio = render(s, text)
        path = out / s.name / f"{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, audio, SAMPLE_RATE)
        return {"path": str(path.relative_to(out)), "speaker": s.name, "sentence": i, "text": text,
                "seconds": round(audio.size / SAMPLE_RATE, 3), "speaker_held_out": s.held_out,
                "sentence_held_out": sentence_held_out(i), "family": s.synth.family,
                "settings": {**asdict(s), "synth": s.synth.value}}

    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as pool:  # espeak-ng runs in its own processes
        rows = list(pool.map(one, jobs))
    with open(out / "metadata.jsonl", "w") as meta:
        for row in rows:
            meta.write(json.dumps(row) + "\n")
    return {"clips": len(rows), "speakers": len(spk), "sentences": n_sentences,
            "hours": round(sum(r["seconds"] for r in rows) / 3600, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the parallel speech corpus (espeak-ng, flite, Festival).")
    ap.add_argument("--out", type=Path, default=Path("data/voice"))
    ap.add_argument("--speakers", type=int, default=20, help="espeak-ng speakers")
    ap.add_argument("--human-variants", type=int, default=4,
                    help=f"speakers per voice made from recordings of people ({len(HUMAN_VOICES)} voices)")
    ap.add_argument("--sentences", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if args.sentences < HELD_OUT_EVERY:
        ap.error(f"--sentences: need at least {HELD_OUT_EVERY} (one held out)")
    try:
        print(json.dumps(build_corpus(args.out, args.speakers, args.sentences, args.seed, args.workers,
                                      args.human_variants)))
    except ValueError as err:
        ap.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
