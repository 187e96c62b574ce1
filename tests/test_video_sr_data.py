"""The video SR corpus: real sources through PyAV and scikit-image, a realistic degradation, a held-out split."""

import json

import numpy as np
from safetensors.numpy import load_file

from pipelines.video_sr.data import (HELD_OUT, ClipSpec, compress, dead_leaves, downscale, lr_key, main, make_clip,
                                     photo_motion, sources)


def test_corpus_files_hold_aligned_hr_and_lr_clips(tmp_path):
    assert main(["--out", str(tmp_path), "--clips", "30", "--frames", "4", "--size", "64", "--pictures", "wheels"]) == 0
    meta = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert len(meta) == 30 and {m["source"] for m in meta} == set(sources("wheels"))
    assert {m["kind"] for m in meta} == {"photo", "procedural", "synthetic"}
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


def test_dead_leaves_pictures_differ_by_seed_and_hold_detail_at_every_scale():
    a, b = (dead_leaves(96, np.random.default_rng(seed)) for seed in (0, 1))
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8 and np.abs(a.astype(int) - b).mean() > 10
    # scale invariance, roughly: detail both pixel to pixel and between 8-pixel blocks
    fine = np.abs(np.diff(a.astype(float), axis=1)).mean()
    coarse = np.abs(np.diff(a.astype(float).reshape(12, 8, 12, 8, 3).mean((1, 3)), axis=1)).mean()
    assert fine > 3 and coarse > 3


def test_photo_motion_minifies_one_to_two_times_like_a_camera_never_magnifies_or_aliases():
    # vertical stripes 8 source pixels apart: a window of 1 to 2 frame widths shows them 4 to 8
    # frame pixels apart (a little more where the rotation tilts them); an aliased or
    # magnifying render would not
    x = np.arange(512)
    stripes = (128 + 100 * np.sin(2 * np.pi * x / 8))[None, :, None].repeat(512, 0).repeat(3, 2).astype(np.uint8)
    for seed in range(6):
        frame = photo_motion(stripes, 2, 64, np.random.default_rng(seed))[0, :, :, 0].astype(float)
        spectrum = np.abs(np.fft.rfft(frame - frame.mean(), axis=1)).mean(0)
        period = 64 / np.argmax(spectrum)
        assert 3.5 <= period <= 9.5, (seed, period)
        assert frame.std() > 20  # the stripes survive the antialiasing filter
