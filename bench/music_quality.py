"""Music quality: tempo and key of generated audio against its caption.

On held-out captions of the corpus (style and key pairs never seen in training), the
same tempo and key estimators measure three sources side by side:
  house         the house DiT + VAE rendering the caption
  real          the held-out fluidsynth render of that caption (the estimators' own ceiling)
  codec         that render encoded and decoded by the house VAE (what the VAE lets through)
  unconditional the house models with the null condition (the floor: chance)

Two yardsticks measure every source: ours (pipelines/music/analysis.py) and librosa's
(its tempo estimator, and its constant-Q chroma under the same key profiles). A figure
that moves on one and not the other has not moved.

Prints JSON lines: tempo_mae_bpm and key_accuracy for each source and yardstick, plus
the share of tempi within 4% (octave errors show up as large absolute errors).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
from common import emit

import torch

from pipelines.music.yardsticks import YARDSTICKS, score
from pipelines.music.codec import decoder_fn, encode_mean
from pipelines.music.corpus import load_split
from pipelines.music.cards import write_card
from pipelines.music.models import HOUSE_MODELS, load_music_models
from pipelines.music.render import MusicJob, render_music
from pipelines.music.train_folder import TITLE


def reconstruct(models, audio: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(audio))[None, None]
    z = encode_mean(models.codec.vae, x)
    return decoder_fn(models.codec.vae)(z)[0, 0, : audio.size].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/music"))
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: house models)")
    ap.add_argument("--captions", type=int, default=72)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--update-card", action="store_true", help="write the figures into the DiT's card")
    args = ap.parse_args()

    models = load_music_models(args.model)
    sr = models.codec.sample_rate
    audio, rows = load_split(args.data, "test", sr)
    audio, rows = audio[: args.captions], rows[: args.captions]
    n = round(args.seconds * sr)
    sources = {"real": [a[:n] for a in audio]}
    sources["codec"] = [reconstruct(models, a[:n]) for a in audio]
    for name, conditional in (("house", True), ("unconditional", False)):
        sources[name] = [
            render_music(models, MusicJob(row["caption"] if conditional else None, args.seconds,
                                          {"seed": i, "steps": args.steps,
                                           "guidance": args.guidance if conditional else 1.0}))
            for i, row in enumerate(rows)
        ]
    results = {}
    for name, audios in sources.items():
        for yardstick in YARDSTICKS:
            result = results[name if yardstick == "ours" else f"{name}_{yardstick}"] = score(audios, rows, sr, yardstick)
            extra = {"source": name, "yardstick": yardstick, "captions": len(rows), "steps": args.steps,
                     "guidance": args.guidance}
            emit("music_quality", "tempo_mae_bpm", result["tempo_mae_bpm"], "bpm", **extra)
            emit("music_quality", "tempo_within_4pct", result["tempo_within_4pct"], "fraction", **extra)
            emit("music_quality", "key_accuracy", result["key_accuracy"], "fraction", **extra)
    if args.update_card:
        update_card(args.model or HOUSE_MODELS, results, args)


def update_card(folder: Path, results: dict, args) -> None:
    path = folder / "transformer" / "house.json"
    card = json.loads(path.read_text())
    card["metrics_heldout"] = {f"{src}_{k}": v for src, r in results.items() for k, v in r.items()}
    card["quality_command"] = (f"python bench/music_quality.py --captions {args.captions} --seconds {args.seconds:g} "
                               f"--steps {args.steps} --guidance {args.guidance:g} --update-card")
    path.write_text(json.dumps(card, indent=2))
    write_card(path.parent, TITLE, card.get("summary", ""))


if __name__ == "__main__":
    main()

