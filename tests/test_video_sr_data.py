"""The video SR corpus: real sources through PyAV and scikit-image, a realistic degradation, a held-out split."""

import json

import numpy as np
from safetensors.numpy import load_file

from pipelines.video_sr.data import HELD_OUT, PHOTOS, PROCEDURAL, ClipSpec, compress, downscale, lr_key, main, make_clip


def test_corpus_files_hold_aligned_hr_and_lr_clips(tmp_path):
    assert main(["--out", str(tmp_path), "--clips", "20", "--frames", "4", "--size", "64"]) == 0
    meta = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert len(meta) == 20 and {m["source"] for m in meta} == set(PHOTOS + PROCEDURAL)
    for m in meta:
        assert (m["split"] == "test") == (m["source"] in HELD_OUT)
        clip = load_file(str(tmp_path / m["file"]))
        assert clip["hr"].shape == (4, 64, 64, 3)
        for scale in (2, 4):
            assert clip[lr_key(scale)].shape == (4, 64 // scale, 64 // scale, 3)
            # each LR clip is a degraded copy of the HR one, not another picture
            ref, lr = downscale(clip["hr"], scale).astype(float), clip[lr_key(scale)].astype(float)
            if ref.std() > 5:  # nearer its own HR than a mirrored picture with the same statistics
                assert np.abs(ref - lr).mean() < np.abs(ref - lr[:, ::-1, ::-1]).mean(), m
        assert clip["hr"].std() > 1 or m["source"] == "life"


def test_photo_motion_moves_and_compression_loses_detail():
    spec = ClipSpec("astronaut", seed=3, frames=6, size=64, blur=0.0, noise=0.0, codec="h264", quality=35)
    hr, lrs = make_clip(spec, (4,))
    lr = lrs[4]
    assert np.abs(hr[0].astype(int) - hr[-1]).mean() > 2  # the camera moves
    clean = downscale(hr, 4)
    assert np.abs(lr.astype(int) - clean).mean() > 0.5  # H.264 at CRF 35 is lossy
    assert np.abs(compress(clean, "jpeg", 90).astype(int) - clean).mean() < np.abs(compress(clean, "jpeg", 20).astype(int) - clean).mean()
