"""A parallel speech corpus without network access: many espeak-ng speakers, the same sentences.

A speaker is an espeak-ng accent (en-us, en-gb, en-gb-scotland...) with a voice
variant (its own formants, breathiness and pitch contour), a base pitch (-p), a speaking
rate (-s) and a vocal-tract factor (the rendering is resampled so that its formants and
pitch move together by 0.88-1.12x, as a longer or shorter tract would); all come from a seed, so the corpus
regenerates exactly. Sentences come from a small grammar, so every speaker says every
sentence (parallel data for conversion and for measuring it against the target's own
rendering). Held out: every fifth speaker and every fifth sentence never appear in
training; the test split holds unseen sentences by seen speakers and everything by
unseen speakers.

    python -m pipelines.voice.data --out data/voice --speakers 24 --sentences 150

Layout: OUT/<speaker>/<sentence>.wav (16 kHz mono, 16-bit) and OUT/metadata.jsonl, a
line per clip with its speaker's settings, the text and the two held-out flags.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
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


@dataclass(frozen=True)
class Speaker:
    name: str
    accent: str
    variant: str
    pitch: int  # espeak-ng -p, 0..99
    rate: int  # -s, words per minute
    tract: float  # formants and pitch scaled by this after synthesis
    held_out: bool

    def command(self, text: str, wav: Path) -> list[str]:
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
    """One utterance through espeak-ng, resampled to `sample_rate` mono float32."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        done = subprocess.run(speaker.command(text, wav), capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"espeak-ng failed for {speaker.name}: {done.stderr.strip()[:200]}")
        # read at rate/tract and play at rate: every frequency moves by `tract`
        return read_audio(wav, round(sample_rate / speaker.tract))


def build_corpus(out: Path, n_speakers: int, n_sentences: int, seed: int = 0, workers: int = 2) -> dict:
    spk, sents = speakers(n_speakers, seed), sentences(n_sentences, seed)
    jobs = [(s, i, t) for s in spk for i, t in enumerate(sents)]

    def one(job) -> dict:
        s, i, text = job
        audio = render(s, text)
        path = out / s.name / f"{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, audio, SAMPLE_RATE)
        return {"path": str(path.relative_to(out)), "speaker": s.name, "sentence": i, "text": text,
                "seconds": round(audio.size / SAMPLE_RATE, 3), "speaker_held_out": s.held_out,
                "sentence_held_out": sentence_held_out(i), "settings": asdict(s)}

    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as pool:  # espeak-ng runs in its own processes
        rows = list(pool.map(one, jobs))
    with open(out / "metadata.jsonl", "w") as meta:
        for row in rows:
            meta.write(json.dumps(row) + "\n")
    return {"clips": len(rows), "speakers": n_speakers, "sentences": n_sentences,
            "hours": round(sum(r["seconds"] for r in rows) / 3600, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate the parallel speech corpus (espeak-ng).")
    ap.add_argument("--out", type=Path, default=Path("data/voice"))
    ap.add_argument("--speakers", type=int, default=24)
    ap.add_argument("--sentences", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if args.sentences < HELD_OUT_EVERY:
        ap.error(f"--sentences: need at least {HELD_OUT_EVERY} (one held out)")
    try:
        print(json.dumps(build_corpus(args.out, args.speakers, args.sentences, args.seed, args.workers)))
    except ValueError as err:
        ap.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
