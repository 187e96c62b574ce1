"""Streaming voice conversion on held-out sentences and speakers: latency, speed, similarity.

For each pair (a source speaker saying a held-out sentence, a target speaker given by a
reference clip of another sentence; half the targets are speakers training never saw, and
half are espeak-ng voices, half voices made from recordings of people (flite, Festival)):
- the stream (`convert_stream`, the live path in device-sized blocks) and the offline
  whole-utterance conversion;
- mcd_db against the target's own rendering of the sentence (after DTW), beside the
  unconverted source's MCD (the baseline) and the offline conversion's (what the chunk
  borders cost: mcd_stream_minus_offline_db);
- speaker_accuracy: a classifier trained on real renders of all the corpus voices (seen
  sentences only) names the converted audio's speaker; a hit is the target. Beside it,
  the codec's ceiling: the target's own sentence through the codec (and the codec's
  MCD floor, the same round trip against the original);
- latency_ms: chunk + overlap + look-ahead (0) plus the median compute of a chunk,
  device excluded (the speech detector's share printed beside it); rtf: compute time over
  audio time.

Speaker accuracy and MCD are printed for all pairs and per family of the target voice
(`espeak_*`, `human_*`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import torch
from common import emit

from engine import StateStore
from pipelines.voice import corpus
from pipelines.voice.checkpoint import HOUSE_MODELS, load_voice, write_voice_card
from pipelines.voice.metrics import SpeakerClassifier, mcd_db, utterance_features
from pipelines.voice.params import VOICE_PARAMS
from pipelines.voice.reference import speaker_embedding
from pipelines.voice.render import convert_offline, stream_through
from pipelines.voice.stream import StreamingVC
from trt_builds.backends import Backend
from trt_builds.bundle import with_backend


def stream(models, speaker, audio, params):
    """The live path (watchdog off, as offline): output, compute seconds, latency report."""
    vc = StreamingVC(models, speaker, StateStore(VOICE_PARAMS, params), watchdog=False)
    t0 = time.perf_counter()
    out = stream_through(vc, audio)
    return out, time.perf_counter() - t0, vc.latency()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/voice")
    ap.add_argument("--model", default=None, help="voice model folder (default: the house models)")
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--chunk-ms", type=int, default=None)
    ap.add_argument("--strength", type=float, default=None)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--backend", default="torch", help="torch, torch-compile, or ort (the converter; on ort the "
                    "codec halves too)")
    ap.add_argument("--update-card", action="store_true", help="write the figures into the model folder's card")
    args = ap.parse_args()
    root = Path(args.data)
    models, encoder = load_voice(args.model)
    models = with_backend(models, Backend.parse(args.backend))
    params = {k: v for k, v in (("chunk_ms", args.chunk_ms), ("strength", args.strength),
                                ("guidance", args.guidance)) if v is not None}
    rows = corpus.rows(root)
    by = {(r["speaker"], r["sentence"]): r for r in rows}
    seen_sentences = sorted({r["sentence"] for r in rows if not r["sentence_held_out"]})
    held_sentences = sorted({r["sentence"] for r in rows if r["sentence_held_out"]})
    family = {r["speaker"]: r.get("family", "espeak") for r in rows}
    speakers_seen = sorted({r["speaker"] for r in rows if not r["speaker_held_out"]})
    speakers_new = sorted({r["speaker"] for r in rows if r["speaker_held_out"]})
    families = sorted(set(family.values()))
    train = [r for r in rows if r["sentence"] in seen_sentences[:20]]
    clf = SpeakerClassifier(np.stack([utterance_features(corpus.audio(root, r)) for r in train]),
                            [r["speaker"] for r in train])
    rng = np.random.default_rng(0)
    results = []
    for i in range(args.pairs):
        pool = speakers_new if i % 2 else speakers_seen  # half the targets were never trained on
        fam = families[(i // 2) % len(families)]  # and the families take turns
        pool = [s for s in pool if family[s] == fam] or pool
        target = pool[rng.integers(len(pool))]
        source = rng.choice([s for s in speakers_seen if s != target])
        sentence = held_sentences[rng.integers(len(held_sentences))]
        reference = corpus.audio(root, by[(target, seen_sentences[rng.integers(len(seen_sentences))])])
        speaker = speaker_embedding(models, encoder, reference)
        src = corpus.audio(root, by[(source, sentence)])
        truth = corpus.audio(root, by[(target, sentence)])
        out, compute_s, latency = stream(models, speaker, src, params)
        offline = convert_offline(models, speaker, src, params)
        through = models.codec.roundtrip(truth)  # the target's own sentence through the codec: the ceiling
        results.append({"hit_codec": clf.predict(utterance_features(through))[0] == target,
                        "mcd_codec": mcd_db(through, truth), "mcd": mcd_db(out, truth), "mcd_source": mcd_db(src, truth), "mcd_offline": mcd_db(offline, truth),
                        "hit": clf.predict(utterance_features(out))[0] == target, "rtf": compute_s / (src.size / 16000),
                        "latency": latency, "new_target": bool(i % 2), "family": family[target]})
    lat = results[-1]["latency"]
    compute = float(np.median([r["latency"]["compute_ms"] for r in results]))
    mean = {k: float(np.mean([r[k] for r in results])) for k in ("hit", "hit_codec", "mcd", "mcd_source",
                                                                  "mcd_offline", "mcd_codec")}
    rtf = float(np.median([r["rtf"] for r in results]))
    state = StateStore(VOICE_PARAMS, params).snapshot
    tags = {"pairs": len(results), "chunk_ms": lat["chunk_ms"], "overlap_ms": lat["overlap_ms"],
            "strength": state["strength"], "guidance": state["guidance"], "backend": args.backend}
    vad = float(np.median([r["latency"]["vad_compute_ms"] for r in results]))
    emit("voice", "latency_ms", lat["algorithmic_ms"] + compute, "ms", algorithmic_ms=lat["algorithmic_ms"],
         lookahead_ms=lat["lookahead_ms"], compute_ms=round(compute, 2), vad_compute_ms=round(vad, 3), **tags)
    emit("voice", "rtf", rtf, "", **tags)
    per_family = {f"{fam}_{k}": round(float(np.mean([r[key] for r in results if r["family"] == fam])), 4)
                  for fam in families for k, key in (("speaker_accuracy", "hit"), ("codec_ceiling", "hit_codec"),
                                                     ("mcd_db", "mcd"), ("mcd_source_db", "mcd_source"),
                                                     ("codec_floor_db", "mcd_codec"))
                  if any(r["family"] == fam for r in results)}
    emit("voice", "speaker_accuracy", mean["hit"], "", baseline=1 / len(clf.names), codec_ceiling=mean["hit_codec"],
         new_targets=float(np.mean([r["hit"] for r in results if r["new_target"]])),
         **{k: v for k, v in per_family.items() if "mcd" not in k and "floor" not in k}, **tags)
    mcd, base, off = mean["mcd"], mean["mcd_source"], mean["mcd_offline"]
    emit("voice", "mcd_db", mcd, "dB", baseline=base, ratio=mcd / base, offline_mcd_db=round(off, 3),
         codec_floor_db=round(mean["mcd_codec"], 3),
         **{k: v for k, v in per_family.items() if "mcd" in k or "floor" in k}, **tags)
    emit("voice", "mcd_stream_minus_offline_db", mcd - off, "dB", **tags)
    if args.update_card:
        folder = Path(args.model) if args.model else HOUSE_MODELS
        card_path = folder / "converter.json"
        card = json.loads(card_path.read_text())
        card["metrics_heldout"] = {
            "latency_ms": lat["algorithmic_ms"] + compute, "compute_ms": compute, "rtf": rtf,
            "speaker_accuracy": mean["hit"], "speaker_accuracy_codec_ceiling": mean["hit_codec"],
            "mcd_codec_floor_db": mean["mcd_codec"], "mcd_db": mcd, "mcd_source_db": base, "mcd_offline_db": off,
            "mcd_stream_minus_offline_db": mcd - off, "vad_compute_ms": vad, **per_family}
        flags = " ".join(f"--{k} {v}" for k, v in (("backend", args.backend), ("chunk-ms", args.chunk_ms),
                                                   ("strength", args.strength), ("guidance", args.guidance))
                         if v is not None)
        card["quality_command"] = f"python bench/voice.py {flags} --update-card ({torch.get_num_threads()} threads)"
        card_path.write_text(json.dumps(card, indent=2))
        write_voice_card(folder)


if __name__ == "__main__":
    main()
