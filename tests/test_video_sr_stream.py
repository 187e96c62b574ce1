"""Streaming video SR: streaming equals the whole-clip path, frames stay in order through live
step changes, files go through PyAV with their timestamps, bad input is a clear error."""

import collections
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from engine import InputError
from pipelines.errors import MediaFileError, ModelFolderError
from pipelines.video_io import VideoReader, VideoWriter
from pipelines.video_sr.checkpoint import load_video_sr
from pipelines.video_sr.motion import steady_input
from pipelines.video_sr.quality import bicubic, bicubic_u8
from pipelines.video_sr.render import render_video_sr
from pipelines.video_sr.stream import LOOKAHEAD_FRAMES, StreamingSR, whole_clip_reference


@pytest.fixture
def model_dir(tiny_video_sr):
    return tiny_video_sr


def _clip(frames: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3))
    return np.stack([np.roll(base, t, axis=1) for t in range(frames)]).astype(np.uint8)  # a pan


@pytest.mark.parametrize("scale,size", [(4, (12, 16)), (2, (12, 16)), (2, (11, 15))])
def test_streaming_equals_the_whole_clip_path(model_dir, scale, size):
    models = load_video_sr(model_dir, scale)
    clip = _clip(6, *size)
    sr = StreamingSR(models)
    out = [f for frame in clip for f in sr.push(frame)] + sr.flush()
    assert len(out) == 6 and LOOKAHEAD_FRAMES == 0
    assert out[0].shape == (size[0] * scale, size[1] * scale, 3) and out[0].dtype == np.uint8
    lr = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 255
    if size[0] % 2 or size[1] % 2:  # the stream pads odd sizes by replication before a 2x upsampler
        lr = torch.nn.functional.pad(lr[0].transpose(0, 1), (0, size[1] % 2, 0, size[0] % 2), mode="replicate")
        lr = lr.transpose(0, 1)[None]
    ref = whole_clip_reference(models.upsampler, models.refiner, models.decoder, lr, models.sigma)
    ref = (ref[0, :, :, : size[0] * scale, : size[1] * scale] * 255).round().permute(1, 2, 3, 0).to(torch.uint8)
    got = torch.from_numpy(np.stack(out))
    assert (got.int() - ref.int()).abs().max() <= 1  # float rounding at the uint8 edge only
    assert (got != ref).float().mean() < 0.01


def _texture_pan(frames: int, noise: float) -> np.ndarray:
    """A photo-like texture (32 x 32) panned 2 pixels a frame (inside the steady search's
    reach), with new noise in every frame, as compression error is."""
    texture = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)),
                                              size=(32, 32), mode="bicubic", align_corners=False)
    base = (texture[0].permute(1, 2, 0).clamp(0, 1) * 255).round().numpy()
    clean = np.stack([np.roll(base, 2 * t, axis=1) for t in range(frames)])
    return np.clip(clean + np.random.default_rng(1).normal(0, noise, clean.shape), 0, 255).round().astype(np.uint8)


def _frames(out) -> torch.Tensor:
    """HR uint8 frames (H, W, 3) -> (N, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255


def test_streaming_with_steady_equals_the_whole_clip_path_and_blends_along_the_motion(model_dir):
    models = load_video_sr(model_dir, 2)
    clean, clip = _texture_pan(6, 0.0), _texture_pan(6, 6.0)
    runs = {}
    for steady in (0.0, 0.8):
        sr = StreamingSR(models)
        # detail 0 (bicubic): the random test networks' detail changes wholly from frame to frame
        sr.store.update({"steady": steady, "detail": 0.0})
        runs[steady] = [f for frame in clip for f in sr.push(frame)] + sr.flush()
    lr = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 255
    ref = whole_clip_reference(models.upsampler, models.refiner, models.decoder, lr, models.sigma, detail=0.0,
                               steady=0.8)
    ref = (ref[0] * 255).round().permute(1, 2, 3, 0).to(torch.uint8)
    got = torch.from_numpy(np.stack(runs[0.8]))
    assert (got.int() - ref.int()).abs().max() <= 1 and (got != ref).float().mean() < 0.01
    assert np.array_equal(runs[0.8][0], runs[0.0][0])  # the first frame has nothing before it
    # blending along the pan averages the noise away: later frames come closer to the clean pan's
    truth = bicubic(torch.from_numpy(clean).permute(3, 0, 1, 2)[None].float() / 255, 2)[0].transpose(0, 1)
    plain, steady = _frames(runs[0.0]), _frames(runs[0.8])
    err = lambda x: (x[3:, ..., 4:-4] - truth[3:, ..., 4:-4]).square().mean()  # noqa: E731  (off the wrapped edge)
    assert err(steady) < 0.8 * err(plain)


def test_one_step_frames_come_out_in_the_tick_they_go_in(model_dir):
    sr = StreamingSR(load_video_sr(model_dir, 4))
    for frame in _clip(5, 8, 8):
        assert len(sr.push(frame)) == 1
    assert sr.flush() == []


def test_with_several_steps_the_ring_holds_consecutive_frames_and_each_equals_its_solo_run(model_dir):
    models = load_video_sr(model_dir, 4)
    clip = _clip(7, 8, 8)
    sr = StreamingSR(models)
    sr.store.update({"steps": 3, "strength": 0.6})
    outs = [sr.push(frame) for frame in clip]
    assert [len(o) for o in outs] == [0, 0, 1, 1, 1, 1, 1]  # out 2 frames after in, then one per tick
    assert sr.ring.depth == 3 and sr.ring.occupied == 2
    streamed = [f for o in outs for f in o] + sr.flush()
    # solo: each frame alone through the same ring shape (frame t waits for t - 1 to leave)
    solo = StreamingSR(models)
    solo.store.update({"steps": 3, "strength": 0.6})
    alone = [f for frame in clip for f in solo.push(frame) + solo.flush()]
    assert len(streamed) == len(alone) == 7
    assert all(np.array_equal(a, b) for a, b in zip(streamed, alone))  # bitwise: same call shape


def test_a_live_step_change_keeps_in_flight_frames_and_their_order(model_dir):
    sr = StreamingSR(load_video_sr(model_dir, 4))
    sr.store.update({"steps": 4})
    clip = _clip(12, 8, 8)
    out = [f for frame in clip[:6] for f in sr.push(frame)]
    in_flight = set(sr.ring.in_flight())
    assert len(in_flight) == 3
    sr.store.set("steps", 1)  # request class: frames already in the ring keep their 4 steps
    out += [f for frame in clip[6:] for f in sr.push(frame)] + sr.flush()
    steps_run = collections.Counter(s.request_id for t in sr.ring.trace for s in t.slots)
    assert all(steps_run[i] == 4 for i in in_flight)  # finished on their own schedule, never flushed
    later = [a for t in sr.ring.trace for a in t.admitted if a.request_id > max(in_flight)]
    assert len(later) == 6 and all(a.steps == 1 for a in later)
    assert len(out) == 12 and sr.ring.counters.admitted == sr.ring.counters.completed == 12
    assert sr._order.idle  # nothing held back: memory does not grow with the stream


def _live_run(models, clip, name: str, value_at, **settings) -> tuple[StreamingSR, list]:
    """Stream `clip` with 3 steps (so frames are in flight), setting `name` to value_at(frames
    pushed so far) before each push; the frames out per push, the flush's last."""
    sr = StreamingSR(models)
    sr.store.update({"steps": 3, "strength": 0.6, **settings})
    out = []
    for i, frame in enumerate(clip):
        sr.store.set(name, value_at(i))
        out.append(sr.push(frame))
    return sr, out + [sr.flush()]


def test_a_live_detail_change_reaches_the_next_frame_out_and_leaves_frames_in_flight_alone(model_dir):
    models = load_video_sr(model_dir, 4)
    clip = _clip(8, 8, 8)
    run = lambda detail_at: _live_run(models, clip, "detail", detail_at)  # noqa: E731
    _, full = run(lambda i: 1.0)
    _, half = run(lambda i: 0.5)
    _, none = run(lambda i: 0.0)
    sr, changed = run(lambda i: 1.0 if i < 5 else 0.5)
    shown = sum(len(o) for o in changed[:5])  # frames out before the change
    full, half, none, changed = ([f for o in x for f in o] for x in (full, half, none, changed))
    assert not np.array_equal(full[3], half[3])  # the decoder adds detail, so the scale shows
    assert all(np.array_equal(a, b) for a, b in zip(changed[:shown], full))
    assert all(np.array_equal(a, b) for a, b in zip(changed[shown:], half[shown:]))  # from the next frame out
    steps_run = collections.Counter(s.request_id for t in sr.ring.trace for s in t.slots)
    assert len(changed) == 8 and set(steps_run.values()) == {3}  # nothing in flight was flushed or re-run
    # detail 0 is the 8-bit bicubic upscale exactly
    base = bicubic_u8(torch.from_numpy(clip).permute(0, 3, 1, 2), 4).permute(0, 2, 3, 1).numpy()
    assert all(np.array_equal(a, b) for a, b in zip(none, base))


def test_a_live_steady_change_reaches_the_next_frame_in_and_leaves_frames_in_flight_alone(model_dir):
    models = load_video_sr(model_dir, 2)
    clip = _texture_pan(8, 3.0)
    # detail 0: the output is the upscale of the (steadied) LR frame, so the blend shows alone
    run = lambda steady_at: _live_run(models, clip, "steady", steady_at, detail=0.0)  # noqa: E731
    _, off = run(lambda i: 0.0)
    sr, changed = run(lambda i: 0.0 if i < 5 else 0.9)
    off, changed = [f for o in off for f in o], [f for o in changed for f in o]
    # request-class: the frames pushed before the change are untouched, though 2 of them
    # were still in the ring when it came; the frame pushed after it is blended
    assert len(changed) == 8 and all(np.array_equal(a, b) for a, b in zip(changed[:5], off))
    assert not np.array_equal(changed[5], off[5])
    # from there on: each LR frame blended with the previous one steadied, then upscaled
    lr = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255
    last, expect = lr[4:5], []
    for t in range(5, 8):
        last = steady_input(last, lr[t : t + 1], 0.9, 2)
        expect.append(bicubic_u8((last * 255).round().to(torch.uint8), 2)[0].permute(1, 2, 0).numpy())
    assert all(np.array_equal(a, b) for a, b in zip(changed[5:], expect))
    steps_run = collections.Counter(s.request_id for t in sr.ring.trace for s in t.slots)
    assert set(steps_run.values()) == {3}  # nothing in flight was flushed or re-run


def test_bad_frames_are_clear_errors_and_the_stream_goes_on(model_dir):
    sr = StreamingSR(load_video_sr(model_dir, 2))
    assert len(sr.push(_clip(1, 8, 8)[0])) == 1
    for bad in (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), np.zeros((10, 8, 3), np.uint8)):
        with pytest.raises(InputError) as err:
            sr.push(bad)
        assert err.value.field == "frame"
    assert len(sr.push(_clip(1, 8, 8)[0])) == 1


def test_missing_or_wrong_model_folders_are_clear_errors(model_dir, tmp_path):
    with pytest.raises(ModelFolderError, match="no house.json"):
        load_video_sr(tmp_path, 4)
    (tmp_path / "house.json").write_text((model_dir / "house.json").read_text())
    with pytest.raises(ModelFolderError, match="x4/upsampler.safetensors: missing"):
        load_video_sr(tmp_path, 4)
    card = json.loads((model_dir / "house.json").read_text())
    (tmp_path / "house.json").write_text(json.dumps({"scales": [4], "x4": card["x4"]}))
    with pytest.raises(ModelFolderError, match="no 2x models"):
        load_video_sr(tmp_path, 2)
    (tmp_path / "house.json").write_text(json.dumps({"scales": [4], "x4": {"config": {"width": 8}}}))
    with pytest.raises(ModelFolderError, match="bad x4 entry"):
        load_video_sr(tmp_path, 4)
    (tmp_path / "x4").mkdir()
    for part in ("upsampler", "refiner", "decoder"):
        (tmp_path / "x4" / f"{part}.safetensors").write_bytes(b"not weights")
    (tmp_path / "house.json").write_text(json.dumps({"scales": [4], "x4": card["x4"]}))
    with pytest.raises(ModelFolderError, match="not weights of this model"):
        load_video_sr(tmp_path, 4)


def _write_vfr_clip(path, frames: int, h: int, w: int) -> list[float]:
    times = [0.04 * i + (0.013 if i % 3 == 1 else 0.0) for i in range(frames)]  # a variable frame rate
    writer = VideoWriter(path, w, h, Fraction(25))
    for frame, t in zip(_clip(frames, h, w), times):
        writer.write(frame, t)
    writer.close()
    return times


def test_render_keeps_frames_and_timestamps_of_a_variable_rate_file(model_dir, tmp_path):
    times = _write_vfr_clip(tmp_path / "in.mp4", 10, 18, 26)
    stats = render_video_sr(load_video_sr(model_dir, 2), tmp_path / "in.mp4", tmp_path / "out.mp4")
    assert stats.frames == 10
    with VideoReader(tmp_path / "out.mp4") as reader:
        got = list(reader)
    assert [f.shape for f, _ in got] == [(36, 52, 3)] * 10
    assert np.allclose([t for _, t in got], times, atol=1e-3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_bad_files_leave_no_output(model_dir, tmp_path):
    models = load_video_sr(model_dir, 4)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaFileError, match="junk.mp4"):
        render_video_sr(models, junk, tmp_path / "out.mp4")
    with pytest.raises(MediaFileError, match="no frames"):  # a zero-length stream
        render_video_sr(models, "testsrc2=size=16x16:duration=0", tmp_path / "out.mp4", source_format="lavfi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]


def test_cli_renders_a_generated_source_and_refuses_bad_input_in_one_line(model_dir, tmp_path):
    out = tmp_path / "sr.mp4"
    ok = subprocess.run([sys.executable, "-m", "demon.cli", "render", "video-sr", "testsrc2=size=32x24:rate=25:duration=0.4",
                         "--input-format", "lavfi", "--scale", "4", "--model", str(model_dir), "--out", str(out)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "10 frames" in ok.stdout and out.is_file()
    for argv, needle in ((["missing.mp4"], "not a readable file"), ([str(out), "--scale", "3"], "invalid choice"),
                         ([str(out), "--strength", "nan"], "strength"), ([str(out), "--detail", "-1"], "detail"),
                         ([str(out), "--steady", "2"], "steady"),
                         ([str(tmp_path / "x.txt")], "readable")):
        bad = subprocess.run([sys.executable, "-m", "demon.cli", "render", "video-sr", *argv, "--model", str(model_dir),
                              "--out", str(tmp_path / "o.mp4")], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_luma_detail_changes_luma_alone_and_times_each_stage(tmp_path):
    """detail_channels 1: the decoder's one channel goes onto R, G and B alike, so an output
    frame differs from bicubic by the same amount in each channel (a change of luma, none of
    chroma), beyond uint8 rounding; and the stream's clock names every stage it ran."""
    from pipelines.video_sr.checkpoint import save_scale
    from pipelines.video_sr.models import CausalDecoder, Encoder, LatentUpsampler, SRConfig, SRDenoiser

    torch.manual_seed(1)
    cfg = SRConfig(width=8, blocks=1, latent_channels=8, detail_channels=1)
    modules = {"encoder": Encoder(cfg), "decoder": CausalDecoder(cfg), "refiner": SRDenoiser(cfg),
               "upsampler": LatentUpsampler(4, cfg)}
    for m in modules.values():
        for p in m.parameters():
            p.data.normal_(0, 0.08)
    save_scale(tmp_path, 4, cfg, modules, {"sigma": 0.3, "steady": 0.0})
    sr = StreamingSR(load_video_sr(tmp_path, 4))
    clip = (_clip(4, 12, 16) // 4 + 96).astype(np.uint8)  # mid-grey detail: nothing clamps
    out = [f for frame in clip for f in sr.push(frame)] + sr.flush()
    base = bicubic_u8(torch.from_numpy(clip).permute(0, 3, 1, 2), 4).permute(0, 2, 3, 1).float()  # (T, H, W, 3)
    got = torch.from_numpy(np.stack(out)).float()
    inside = ((got > 0) & (got < 255)).all(-1)  # where no channel clamped
    delta = (got - base)[inside]
    assert inside.float().mean() > 0.5 and delta.abs().mean() > 2  # the detail is there
    assert torch.equal(delta, delta[:, :1].expand_as(delta))  # and the same in R, G and B
    assert {"convert", "upsampler", "refiner", "decoder", "bicubic"} <= set(sr.clock.ms_per_frame(4))
