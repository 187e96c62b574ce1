"""Streaming voice conversion on held-out sentences and speakers: latency, speed, similarity.

For each pair (a source speaker saying a held-out sentence, a target speaker given by a
reference clip of another sentence; half the targets are speakers training never saw):
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
  device excluded; rtf: compute time over audio time.
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
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--chunk-ms", type=int, default=None)
    ap.add_argument("--strength", type=float, default=None)
    ap.add_argument("--backend", default="torch", help="torch, torch-compile, or ort (the converter; on ort the "
                    "codec halves too)")
    ap.add_argument("--update-card", action="store_true", help="write the figures into the model folder's card")
    args = ap.parse_args()
    root = Path(args.data)
    models, encoder = load_voice(args.model)
    models = with_backend(models, Backend.parse(args.backend))
    params = {k: v for k, v in (("chunk_ms", args.chunk_ms), ("strength", args.strength)) if v is not None}
    rows = corpus.rows(root)
    by = {(r["speaker"], r["sentence"]): r for r in rows}
    seen_sentences = sorted({r["sentence"] for r in rows if not r["sentence_held_out"]})
    held_sentences = sorted({r["sentence"] for r in rows if r["sentence_held_out"]})
    speakers_seen = sorted({r["speaker"] for r in rows if not r["speaker_held_out"]})
    speakers_new = sorted({r["speaker"] for r in rows if r["speaker_held_out"]})
    train = [r for r in rows if r["sentence"] in seen_sentences[:20]]
    clf = SpeakerClassifier(np.stack([utterance_features(corpus.audio(root, r)) for r in train]),
                            [r["speaker"] for r in train])
    rng = np.random.default_rng(0)
    results = []
    for i in range(args.pairs):
        pool = speakers_new if i % 2 else speakers_seen  # half the targets were never trained on
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
                        "latency": latency, "new_target": bool(i % 2)})
    lat = results[-1]["latency"]
    compute = float(np.median([r["latency"]["compute_ms"] for r in results]))
    mean = {k: float(np.mean([r[k] for r in results])) for k in ("hit", "hit_codec", "mcd", "mcd_source",
                                                                  "mcd_offline", "mcd_codec")}
    rtf = float(np.median([r["rtf"] for r in results]))
    tags = {"pairs": len(results), "chunk_ms": lat["chunk_ms"], "overlap_ms": lat["overlap_ms"],
            "backend": args.backend}
    emit("voice", "latency_ms", lat["algorithmic_ms"] + compute, "ms", algorithmic_ms=lat["algorithmic_ms"],
         lookahead_ms=lat["lookahead_ms"], compute_ms=round(compute, 2), **tags)
    emit("voice", "rtf", rtf, "", **tags)
    emit("voice", "speaker_accuracy", mean["hit"], "", baseline=1 / len(clf.names), codec_ceiling=mean["hit_codec"],
         new_targets=float(np.mean([r["hit"] for r in results if r["new_target"]])), **tags)
    mcd, base, off = mean["mcd"], mean["mcd_source"], mean["mcd_offline"]
    emit("voice", "mcd_db", mcd, "dB", baseline=base, ratio=mcd / base, offline_mcd_db=round(off, 3),
         codec_floor_db=round(mean["mcd_codec"], 3), **tags)
    emit("voice", "mcd_stream_minus_offline_db", mcd - off, "dB", **tags)
    if args.update_card:
        folder = Path(args.model) if args.model else HOUSE_MODELS
        card_path = folder / "converter.json"
        card = json.loads(card_path.read_text())
        card["metrics_heldout"] = {
            "latency_ms": lat["algorithmic_ms"] + compute, "compute_ms": compute, "rtf": rtf,
            "speaker_accuracy": mean["hit"], "speaker_accuracy_codec_ceiling": mean["hit_codec"],
            "mcd_codec_floor_db": mean["mcd_codec"], "mcd_db": mcd, "mcd_source_db": base, "mcd_offline_db": off,
            "mcd_stream_minus_offline_db": mcd - off}
        flags = " ".join(f"--{k} {v}" for k, v in (("backend", args.backend), ("chunk-ms", args.chunk_ms),
                                                   ("strength", args.strength)) if v is not None)
        card["quality_command"] = f"python bench/voice.py {flags} --update-card ({torch.get_num_threads()} threads)"
        card_path.write_text(json.dumps(card, indent=2))
        write_voice_card(folder)


if __name__ == "__main__":
    main()
