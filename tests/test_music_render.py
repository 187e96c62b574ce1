"""Headless render: text-to-music and audio-to-audio to real files, bad input refused."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from engine import InputError
from pipelines.audio_io import AudioFileError, read_audio, write_audio
from pipelines.music.models import load_music_models
from pipelines.music.render import MusicJob, generate_latents, source_latents


def demon(*argv, timeout=300):
    return subprocess.run([sys.executable, "-m", "demon", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout)


def test_text_to_music_writes_a_complete_file(tiny_models, tmp_path):
    out = tmp_path / "song.flac"
    proc = demon("render", "music", "--prompt", "synth pop, 120 bpm, C major", "--seconds", 2, "--steps", 2,
                 "--guidance", 2.0, "--model", tiny_models, "--out", out)
    assert proc.returncode == 0, proc.stderr
    audio = read_audio(out, 16_000)
    assert audio.shape == (32_000,) and np.isfinite(audio).all()
    assert [p.name for p in tmp_path.iterdir()] == ["song.flac"]  # no temporary left behind


def test_audio_to_audio_stays_nearer_the_source_at_low_strength(tiny_models, tmp_path):
    src = tmp_path / "src.wav"
    t = np.arange(32_000) / 16_000
    write_audio(src, 0.3 * np.sin(2 * np.pi * 220 * t) * (t % 0.5 < 0.25), 16_000)
    models = load_music_models(tiny_models)
    target = source_latents(models, src, 50)
    dist = {}
    for strength in (0.15, 0.9):
        job = MusicJob("acoustic folk", 2.0, {"steps": 4, "strength": strength, "seed": 3}, src)
        dist[strength] = (generate_latents(models, job) - target).pow(2).mean().item()
    assert dist[0.15] < dist[0.9]
    out = tmp_path / "cover.wav"
    proc = demon("render", "music", "--prompt", "acoustic folk", "--seconds", 1.5, "--steps", 2, "--model",
                 tiny_models, "--source", src, "--strength", 0.5, "--solver", "sde", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert read_audio(out, 16_000).shape == (24_000,)


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["--seconds", "0"], "--seconds"),
        (["--seconds", "100000"], "--seconds"),
        (["--steps", "0"], "--steps"),
        (["--solver", "ddim"], "invalid choice"),
        (["--strength", "0.5"], "needs --source"),
        (["--source", "SRC_TEXT"], "cannot decode"),
        (["--out", "/no/such/folder/x.wav"], "does not exist"),
        (["--out", "OUT.mp3"], ".wav or .flac"),
        (["--model", "/no/such/model"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_no_file(tiny_models, tmp_path, extra, fragment):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is not audio")
    out = tmp_path / "out.wav"
    extra = [str(bogus) if e == "SRC_TEXT" else str(tmp_path / "out.mp3") if e == "OUT.mp3" else e for e in extra]
    argv = ["render", "music", "--prompt", "brass band", "--seconds", "1", "--steps", "1", "--model",
            str(tiny_models), "--out", str(out), *extra]
    if "--out" in extra:
        argv = argv[: argv.index("--out")] + argv[argv.index("--out") + 2 :]
    proc = demon(*argv)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demon: error:") and fragment in lines[0], proc.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.wav"]


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import av

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(av.AudioFrame, "from_ndarray", broken)
    with pytest.raises(InputError, match="cannot write .*x.wav: disk full"):  # one line for the CLI to say
        write_audio(tmp_path / "x.wav", np.zeros(16_000), 16_000)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_audio_is_a_clear_error(tmp_path):
    path = tmp_path / "x.flac"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(AudioFileError, match="cannot decode|no audio"):
        read_audio(path, 16_000)


def test_jobs_batched_through_one_ring_step_in_lockstep_and_match_their_solo_renders(tiny_models):
    """A batch's ring seats every job on its first tick: three 3-step jobs take 3 ticks,
    not the 5 a live ring's one-a-tick admission would, and each equals its solo render
    within float rounding (the batched rows sum in another order)."""
    from pipelines.music.render import _Prepared, generate_together, prepare

    models = load_music_models(tiny_models)
    jobs = [MusicJob("synth pop, 120 bpm", 1.0, {"steps": 3, "seed": seed, "guidance": 1.0}) for seed in (1, 2, 3)]
    ticks = []
    together = generate_together(models, [_Prepared.of(models, j, prepare(models, j)) for j in jobs],
                                 progress=lambda stage, done, total: ticks.append(done))
    assert ticks[-1] == 3
    for job, latents in zip(jobs, together):
        assert torch.allclose(latents, generate_latents(models, job), atol=1e-4)
    assert not torch.allclose(together[0], together[1])  # each slot kept its own seed
