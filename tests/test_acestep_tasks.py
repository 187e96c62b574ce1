"""Repaint, cover and a timbre reference through our render path equal diffusers' AceStepPipeline.

The folder is tiny and random but complete (tests/acestep_folder.py). diffusers encodes
source and reference audio with `latent_dist.sample()` from the global torch RNG; our
render encodes the posterior mean (task_inputs.py says why). So diffusers runs here
with the VAE posterior's sample replaced by its mean: both sides then read the same
latents, and the comparison is of everything after the encode.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
import torch

from demon.cli import main
from engine import InputError
from pipelines.audio_io import read_audio, write_audio
from pipelines.music.models import load_music_models
from pipelines.music.render import MusicJob, decode_audio, generate_latents, render_latents
from pipelines.music.task_inputs import read_model_audio, read_source, reference_segments
from pipelines.music.tasks import MusicTask, RepaintWindow

TOLERANCE = 1e-4
PROMPT = "A calm piano piece with soft strings"
LYRICS = "[verse]\nSoft notes in the morning"
RATE = 48_000
WINDOW = RepaintWindow(0.5, 1.3)  # frames [12, 32) of 50


def tone(seconds: float, seed: int, channels: int = 2, rate: int = RATE) -> np.ndarray:
    """(channels, samples) of chords and noise, different on each channel."""
    g = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    rows = [sum(0.15 * np.sin(2 * np.pi * f * t + g.uniform(0, 6)) for f in g.uniform(80, 2000, 3))
            + 0.05 * g.standard_normal(t.size) for _ in range(channels)]
    return np.stack(rows).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("task_audio")
    paths = {"source": root / "source.wav", "reference": root / "reference.flac", "short": root / "short.wav",
             "mono": root / "mono.wav"}
    write_audio(paths["source"], tone(2.0, 1), RATE)
    write_audio(paths["reference"], tone(3.3, 2, rate=44_100), 44_100)  # resampled on the way in
    write_audio(paths["short"], tone(0.5, 3), RATE)
    write_audio(paths["mono"], tone(1.0, 4, channels=1, rate=16_000)[0], 16_000)
    return paths


@contextmanager
def posterior_mean():
    """diffusers' VAE posterior answers `sample()` with its mean (ours encodes the mean)."""
    from diffusers.models.autoencoders.autoencoder_oobleck import OobleckDiagonalGaussianDistribution

    with mock.patch.object(OobleckDiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean):
        yield


def diffusers_latents(folder, models, seed, source=None, reference=None, **kw) -> torch.Tensor:
    from diffusers import AceStepPipeline

    pipe = AceStepPipeline.from_pretrained(str(folder), local_files_only=True, low_cpu_mem_usage=False)
    pipe.set_progress_bar_config(disable=True)
    audio = {}
    if source is not None:
        audio["src_audio"] = torch.from_numpy(read_model_audio(models.codec, source))
    if reference is not None:
        audio["reference_audio"] = torch.from_numpy(read_model_audio(models.codec, reference))
    with posterior_mean():
        out = pipe(prompt=PROMPT, lyrics=LYRICS, generator=torch.Generator("cpu").manual_seed(seed),
                   output_type="latent", **audio, **kw)
    return out.audios[0]


def compare(name, ours, theirs) -> float:
    diff = (ours - theirs).abs().max().item()
    print(f"{name}: max |ours - diffusers| = {diff:.3g}")
    assert ours.shape == theirs.shape and diff <= TOLERANCE
    return diff


# ---- repaint ----------------------------------------------------------------------------------


def test_repaint_on_turbo_equals_diffusers(turbo, acestep_folders, files):
    job = MusicJob(PROMPT, None, {"seed": 5}, files["source"], lyrics=LYRICS, task=MusicTask.REPAINT, window=WINDOW)
    ours = generate_latents(turbo, job)
    theirs = diffusers_latents(acestep_folders("turbo"), turbo, 5, files["source"], task_type="repaint",
                               repainting_start=WINDOW.start, repainting_end=WINDOW.end, audio_duration=2.0)
    compare("repaint, turbo", ours, theirs)
    assert ours.shape == (50, 8)


def test_repaint_on_base_with_apg_equals_diffusers(base, acestep_folders, files):
    job = MusicJob(PROMPT, None, {"seed": 6, "steps": 4}, files["source"], lyrics=LYRICS, task=MusicTask.REPAINT,
                   window=RepaintWindow(1.0))
    ours = generate_latents(base, job)
    theirs = diffusers_latents(acestep_folders("base"), base, 6, files["source"], task_type="repaint",
                               repainting_start=1.0, num_inference_steps=4, guidance_scale=7.0, audio_duration=2.0)
    compare("repaint to the end, base with APG at guidance 7", ours, theirs)


def test_a_repaint_keeps_the_source_outside_its_window(turbo, acestep_folders, files):
    job = MusicJob(PROMPT, None, {"seed": 5}, files["source"], lyrics=LYRICS, task=MusicTask.REPAINT, window=WINDOW)
    latents, inputs = render_latents(turbo, job)
    drawn = generate_latents(turbo, job)
    source = read_source(turbo.codec, files["source"]).latents
    first, stop = inputs.window
    assert (first, stop) == (12, 32)
    outside = torch.cat([latents[:first] - source[:first], latents[stop:] - source[stop:]])
    kept = outside.abs().max().item()
    drifted = torch.cat([drawn[:first] - source[:first], drawn[stop:] - source[stop:]]).abs().max().item()
    print(f"repaint: kept region max |ours - source| = {kept:.3g} (the model's own draw there: {drifted:.3g})")
    assert kept == 0.0
    assert torch.equal(latents[first:stop], drawn[first:stop])
    # and in audio: away from the window by the decoder's halo, the source's own decode
    hop, halo = turbo.codec.geometry.hop, turbo.codec.geometry.halo
    ours, theirs = decode_audio(turbo, latents), decode_audio(turbo, source)
    cut = [slice(0, max(0, (first - halo) * hop)), slice((stop + halo) * hop, None)]
    audio_diff = max(float(np.abs(ours[:, c] - theirs[:, c]).max(initial=0.0)) for c in cut)
    print(f"repaint: kept audio (halo {halo} frames) max |ours - source decode| = {audio_diff:.3g}")
    assert audio_diff <= 1e-5


# ---- cover ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_cover_on_turbo_equals_diffusers(turbo, acestep_folders, files, strength):
    job = MusicJob(PROMPT, None, {"seed": 9}, files["source"], lyrics=LYRICS, task=MusicTask.COVER,
                   cover_strength=strength)
    ours = generate_latents(turbo, job)
    theirs = diffusers_latents(acestep_folders("turbo"), turbo, 9, files["source"], task_type="cover",
                               audio_cover_strength=strength, audio_duration=2.0)
    compare(f"cover at strength {strength:g}, turbo", ours, theirs)


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_cover_on_base_with_apg_equals_diffusers(base, acestep_folders, files, strength):
    """Below strength 1 the text-to-music prediction is blended in after APG, as diffusers does."""
    job = MusicJob(PROMPT, None, {"seed": 2, "steps": 3}, files["source"], lyrics=LYRICS, task=MusicTask.COVER,
                   cover_strength=strength)
    ours = generate_latents(base, job)
    theirs = diffusers_latents(acestep_folders("base"), base, 2, files["source"], task_type="cover",
                               num_inference_steps=3, guidance_scale=7.0, audio_duration=2.0,
                               audio_cover_strength=strength)
    compare(f"cover at strength {strength:g}, base with APG at guidance 7", ours, theirs)


# ---- a timbre reference -------------------------------------------------------------------------


def test_a_reference_changes_the_result_and_equals_diffusers(turbo, acestep_folders, files):
    plain = generate_latents(turbo, MusicJob(PROMPT, 1.0, {"seed": 4}, lyrics=LYRICS))
    ours = generate_latents(turbo, MusicJob(PROMPT, 1.0, {"seed": 4}, lyrics=LYRICS, reference=files["reference"]))
    change = (ours - plain).abs().max().item()
    print(f"reference vs none: max |difference| = {change:.3g}")
    assert change > 10 * TOLERANCE  # the one timbre token among ~200, in a random tiny model: small but real
    theirs = diffusers_latents(acestep_folders("turbo"), turbo, 4, reference=files["reference"], audio_duration=1.0)
    compare("text to music with a reference, turbo", ours, theirs)


def test_reference_segments_are_diffusers_front_middle_and_back():
    from diffusers import AceStepPipeline

    class Encoded(Exception):
        """Stops diffusers once it hands the VAE its audio: only that audio matters here."""

    def encode(x):
        captured.append(x)
        raise Encoded

    captured = []
    pipe = mock.Mock(sample_rate=100)  # 100 Hz: 30 s is 3000 samples
    pipe.vae.dtype = torch.float32
    pipe.vae.encode.side_effect = encode
    for seconds in (7, 31, 45):
        audio = np.arange(2 * seconds * 100, dtype=np.float32).reshape(2, -1)
        with pytest.raises(Encoded):
            AceStepPipeline.prepare_reference_audio_latents(pipe, torch.from_numpy(audio), 1, "cpu", torch.float32)
        np.testing.assert_array_equal(reference_segments(audio, 100), captured[-1][0].numpy())


# ---- reading audio in the model's format ------------------------------------------------------


def test_audio_is_read_at_the_vae_rate_and_channels(turbo, files):
    mono = read_model_audio(turbo.codec, files["mono"])  # 16 kHz mono -> 48 kHz stereo
    assert mono.shape == (2, 48_000) and np.array_equal(mono[0], mono[1])
    np.testing.assert_array_equal(mono[0], read_audio(files["mono"], RATE))  # the mono read, on each channel
    stereo = read_model_audio(turbo.codec, files["source"])
    assert stereo.shape == (2, 96_000) and np.abs(stereo[0] - stereo[1]).max() > 0.1
    assert read_audio(files["source"], RATE).shape == (96_000,)  # mono callers still get (samples,)


# ---- bad input: one line, exit 2, nothing written ---------------------------------------------


def _render(folder, out, *extra):
    return main(["render", "music", "--model", str(folder), "--prompt", "x", "--steps", "1", "--out", str(out),
                 *map(str, extra)])


@pytest.mark.parametrize("extra,fragment", [
    (["--task", "repaint", "--source", "SOURCE", "--repaint-start", "1.5", "--repaint-end", "2.5"],
     "repaint_end: 2.5 s lies outside the source (0 to 2 s)"),
    (["--task", "repaint", "--source", "SOURCE", "--repaint-start", "2"], "repaint_start: 2 s lies outside"),
    (["--task", "repaint", "--source", "SOURCE", "--repaint-start", "1", "--repaint-end", "1"],
     "--repaint-end: the window [1, 1) s is empty"),
    (["--task", "repaint", "--source", "SOURCE", "--repaint-start", "-1"], "--repaint-start: must be 0 or more"),
    (["--task", "repaint"], "--task repaint: needs --source FILE"),
    (["--task", "cover"], "--task cover: needs --source FILE"),
    (["--task", "cover", "--source", "SOURCE", "--seconds", "1"], "--seconds: cover keeps the source's length"),
    (["--cover-strength", "0.5"], "--cover-strength: only with --task cover"),
    (["--repaint-end", "1"], "only with --task repaint"),
    (["--task", "cover", "--source", "SOURCE", "--cover-strength", "2"], "--cover-strength: must lie in [0, 1]"),
    (["--task", "remix"], "invalid choice"),
    (["--reference", "SHORT", "--seconds", "1"], "0.50 s; a timbre reference needs at least 1 s"),
    (["--reference", "/no/such.wav", "--seconds", "1"], "--reference: /no/such.wav is not a readable file"),
    (["--task", "repaint", "--source", "SOURCE", "--strength", "0.5"], "strength: repaint starts from noise"),
])
def test_bad_task_input_is_one_line_exit_2_and_nothing_written(acestep_folders, files, tmp_path, capsys, extra,
                                                                fragment):
    out = tmp_path / "song.wav"
    extra = [str(files["source"]) if e == "SOURCE" else str(files["short"]) if e == "SHORT" else e for e in extra]
    rc = _render(acestep_folders("turbo"), out, *extra)
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("demon: error:") and fragment in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_cover_of_a_folder_without_its_audio_tokenizer_is_refused(acestep_folders, files, tmp_path, capsys):
    from acestep_folder import without_audio_tokens

    folder = without_audio_tokens(shutil.copytree(acestep_folders("turbo"), tmp_path / "model"))
    models = load_music_models(folder)
    assert models.conditioner.audio_tokenizer is None
    out = tmp_path / "out" / "song.wav"
    out.parent.mkdir()
    rc = _render(folder, out, "--task", "cover", "--source", files["source"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "cover needs the folder's audio_tokenizer" in lines[0], lines
    assert list(out.parent.iterdir()) == []
    # repaint needs no audio tokenizer
    assert generate_latents(models, MusicJob(PROMPT, None, {"steps": 1}, files["source"], task=MusicTask.REPAINT,
                                             window=WINDOW)).shape == (50, 8)


# ---- the command line ---------------------------------------------------------------------------


def test_render_music_repaints_a_window_of_the_source(acestep_folders, files, tmp_path):
    import av

    out = tmp_path / "repainted.flac"
    proc = subprocess.run([sys.executable, "-m", "demon", "render", "music", "--model", str(acestep_folders("turbo")),
                           "--prompt", PROMPT, "--task", "repaint", "--source", str(files["source"]),
                           "--repaint-start", "0.5", "--repaint-end", "1.3", "--reference", str(files["reference"]),
                           "--seed", "3", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "2 s at 48000 Hz, stereo" in proc.stdout
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.channels) == (48_000, 2)
        assert sum(frame.samples for frame in container.decode(stream)) == 96_000  # the source's length
