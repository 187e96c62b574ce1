"""A complete ACE-Step 1.5 folder through our render path equals diffusers' own AceStepPipeline.

The folder is tiny and random but complete, with the real audio geometry (tests/acestep_folder.py).
For the same prompt, lyrics, metadata, seed, steps and shift, the latents `demon render music
--model DIR` produces are compared with `AceStepPipeline(..., output_type="latent")`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from acestep_folder import break_folder
from demon.cli import main
from engine import Ring, StateStore, request_from_state, run_alone
from pipelines.errors import ModelFolderError
from pipelines.music.models import load_music_models
from pipelines.music.prompt import TASKS, SongMeta, SongText, format_song, task_instruction
from pipelines.music.render import MusicJob, decode_audio, generate_latents, job_frames

TOLERANCE = 1e-4
PROMPT = "A calm piano piece with soft strings"
LYRICS = "[verse]\nSoft notes in the morning\n[chorus]\nLa la la"


def diffusers_latents(folder, seconds, seed, **kw) -> torch.Tensor:
    from diffusers import AceStepPipeline

    pipe = AceStepPipeline.from_pretrained(str(folder), local_files_only=True, low_cpu_mem_usage=False)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt=PROMPT, audio_duration=seconds, generator=torch.Generator("cpu").manual_seed(seed),
               output_type="latent", **kw)
    return out.audios[0]


# ---- the folder is complete: diffusers itself loads and runs it ------------------------------


@pytest.mark.parametrize("variant", ["turbo", "base"])
def test_diffusers_loads_and_runs_the_tiny_folder(acestep_folders, variant):
    from diffusers import AceStepPipeline

    folder = acestep_folders(variant)
    pipe = AceStepPipeline.from_pretrained(str(folder), local_files_only=True, low_cpu_mem_usage=False)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.audio_tokenizer is not None and pipe.audio_token_detokenizer is not None
    assert pipe.is_turbo == (variant == "turbo")
    assert (pipe.sample_rate, pipe.latents_per_second) == (48_000, 25.0)
    audio = pipe(prompt=PROMPT, lyrics=LYRICS, audio_duration=1.0, num_inference_steps=2,
                 generator=torch.Generator("cpu").manual_seed(0)).audios
    assert audio.shape == (1, 2, 48_000) and torch.isfinite(audio).all()
    assert bool(pipe.condition_encoder.silence_latent.abs().sum() > 0)  # a learned silence, not zeros


# ---- the text inputs, string for string ---------------------------------------------------------


@pytest.mark.parametrize("meta,seconds", [(SongMeta(), 60.0), (SongMeta("fr", 92, "A minor", "3"), 12.7),
                                          (SongMeta(bpm=0, key="  "), 0.0)])
def test_prompt_and_lyric_strings_equal_diffusers(meta, seconds):
    from diffusers import AceStepPipeline

    ours = format_song(SongText(PROMPT, LYRICS, seconds, meta))
    theirs = AceStepPipeline._format_prompt(AceStepPipeline, PROMPT, LYRICS, meta.language, seconds, None, meta.bpm,
                                            meta.key, meta.time_signature)
    assert ours == theirs
    for task in TASKS:
        for track in (None, "drums"):
            assert task_instruction(task, track, [track] if track else None) == \
                AceStepPipeline._get_task_instruction(task, track, [track] if track else None)


# ---- latents: our render path against diffusers' pipeline -------------------------------------


def test_turbo_with_the_folder_defaults_equals_diffusers(turbo, acestep_folders):
    """Only prompt, lyrics, length and seed said: steps, shift and guidance come from the folder
    and must be diffusers' __call__ defaults (turbo: guidance off)."""
    job = MusicJob(PROMPT, 2.0, {"seed": 11}, lyrics=LYRICS)
    ours = generate_latents(turbo, job)
    theirs = diffusers_latents(acestep_folders("turbo"), 2.0, 11, lyrics=LYRICS)
    diff = (ours - theirs).abs().max().item()
    print(f"turbo defaults (8 steps, shift 3): max |ours - diffusers| = {diff:.3g}")
    assert ours.shape == theirs.shape == (50, 8) and diff <= TOLERANCE


def test_turbo_with_explicit_steps_shift_and_metadata_equals_diffusers(turbo, acestep_folders):
    meta = SongMeta("de", 128, "F# minor", "4")
    job = MusicJob(PROMPT, 1.0, {"seed": 3, "steps": 4, "shift": 2.0}, lyrics=LYRICS, meta=meta)
    ours = generate_latents(turbo, job)
    theirs = diffusers_latents(acestep_folders("turbo"), 1.0, 3, lyrics=LYRICS, num_inference_steps=4, shift=2.0,
                               vocal_language="de", bpm=128, keyscale="F# minor", timesignature="4")
    diff = (ours - theirs).abs().max().item()
    print(f"turbo 4 steps, shift 2, metadata: max |ours - diffusers| = {diff:.3g}")
    assert ours.shape == theirs.shape == (25, 8) and diff <= TOLERANCE


def test_base_with_apg_at_guidance_7_equals_diffusers(base, acestep_folders):
    """A base folder's defaults: diffusers' guidance 7 with APG, over a [cond, null] batch."""
    job = MusicJob(PROMPT, 2.0, {"seed": 7}, lyrics=LYRICS)
    ours = generate_latents(base, job)
    theirs = diffusers_latents(acestep_folders("base"), 2.0, 7, lyrics=LYRICS, guidance_scale=7.0)
    unguided = diffusers_latents(acestep_folders("base"), 2.0, 7, lyrics=LYRICS, guidance_scale=1.0)
    diff = (ours - theirs).abs().max().item()
    print(f"base, APG at guidance 7: max |ours - diffusers| = {diff:.3g}")
    assert diff <= TOLERANCE
    assert (theirs - unguided).abs().max().item() > 100 * TOLERANCE  # the guidance is really at work


def test_folder_defaults_are_diffusers_call_defaults():
    from pipelines.music.folder import folder_defaults

    assert folder_defaults(True).params() == {"steps": 8, "shift": 3.0, "guidance": 1.0, "guidance_rule": "apg"}
    assert folder_defaults(False).params() == {"steps": 8, "shift": 3.0, "guidance": 7.0, "guidance_rule": "apg"}


def test_stereo_decode_is_the_vae_decode_at_a_fixed_gain(turbo):
    latents = generate_latents(turbo, MusicJob(PROMPT, 2.0, {"seed": 1, "steps": 2}))
    audio = decode_audio(turbo, latents)
    with torch.inference_mode():
        full = turbo.codec.vae.decode(latents.T[None]).sample[0].numpy()
    assert audio.shape == full.shape == (2, 96_000)
    np.testing.assert_allclose(audio, full, atol=1e-5)  # windowed, never peak-normalised


# ---- the ring: the same request mixed with others equals it alone -----------------------------


def test_a_request_in_a_depth_4_ring_with_others_equals_it_alone(base, acestep_folders):
    models = base
    frames = job_frames(models, 1.0)
    song_cond = models.conditioner.cond(SongText(PROMPT, LYRICS, 1.0), frames)
    null = models.conditioner.null(song_cond)
    store = StateStore(initial={**models.defaults.params(), "depth": 4})
    shape = (frames, models.codec.channels)
    ring = Ring(models.denoiser, shape, store=store, null_cond=null)
    g = torch.Generator().manual_seed(0)
    others = [{k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in song_cond.items()} for _ in range(5)]
    target = request_from_state(store.snapshot, cond=song_cond, seed=21)
    requests = [request_from_state(store.snapshot, cond=c, seed=100 + i) for i, c in enumerate(others)]
    requests.insert(2, target)
    for r in requests[:3]:
        ring.submit(r)
    for _ in range(3):  # the target is admitted among others already mid-schedule
        ring.tick()
    for r in requests[3:]:
        ring.submit(r)
    done = {c.request.id: c.latent for c in ring.run_until_idle()}
    alone = run_alone(models.denoiser, target, shape, depth=4, state=store.snapshot, null_cond=null)
    assert torch.equal(done[target.id], alone.latent)
    theirs = diffusers_latents(acestep_folders("base"), 1.0, 21, lyrics=LYRICS)
    diff = (done[target.id] - theirs).abs().max().item()
    print(f"base in a depth-4 ring: max |ring - diffusers| = {diff:.3g}")
    assert diff <= TOLERANCE


# ---- the command line -------------------------------------------------------------------------


def test_render_music_writes_stereo_48k_from_a_complete_folder(acestep_folders, tmp_path):
    import av

    lyrics = tmp_path / "lyrics.txt"
    lyrics.write_text(LYRICS + "\n")
    out = tmp_path / "song.wav"
    proc = subprocess.run([sys.executable, "-m", "demon", "render", "music", "--model", str(acestep_folders("turbo")),
                           "--prompt", PROMPT, "--seconds", "1.0", "--seed", "3", "--lyrics", str(lyrics),
                           "--bpm", "90", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "48000 Hz, stereo" in proc.stdout
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert (stream.rate, stream.channels) == (48_000, 2)
        samples = sum(frame.samples for frame in container.decode(stream))
    assert samples == 48_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lyrics.txt", "song.wav"]


@pytest.mark.parametrize("how,fragment", [
    ("no index", "model_index.json is missing"),
    ("no component", "component condition_encoder/ is missing"),
    ("pickle weights", "text_encoder has only pickle weights (pytorch_model.bin); only safetensors load"),
    ("config condition_encoder text_hidden_dim 24", "condition_encoder text_hidden_dim 24 does not match"),
    ("config transformer in_channels 16", "transformer in_channels 16 is not 3 x"),
    ("config vae decoder_input_channels 4", "vae decodes 4 latent channels"),
    ("config condition_encoder hidden_size 48", "does not match the condition_encoder's hidden_size 48"),
    ("config scheduler shift 3.0", "scheduler has num_train_timesteps=1, shift=3.0"),
])
def test_a_bad_folder_is_one_line_exit_2_and_nothing_written(acestep_folders, tmp_path, capsys, how, fragment):
    folder = break_folder(shutil.copytree(acestep_folders("turbo"), tmp_path / "model"), how)
    out = tmp_path / "out" / "song.wav"
    out.parent.mkdir()
    with pytest.raises(ModelFolderError, match=fragment.split(" (")[0]):
        load_music_models(folder)
    rc = main(["render", "music", "--model", str(folder), "--prompt", "x", "--seconds", "1", "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("demon: error:") and fragment in lines[0], lines
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("extra,fragment", [
    (["--lyrics", "BINARY"], "--lyrics: "),
    (["--lyrics", "/no/such/lyrics.txt"], "--lyrics: /no/such/lyrics.txt is not a readable file"),
    (["--guidance", "7"], "guidance: "),
    (["--bpm", "0"], "--bpm"),
])
def test_bad_song_input_is_one_line_exit_2_and_nothing_written(acestep_folders, tmp_path, capsys, extra, fragment):
    binary = tmp_path / "lyrics.bin"
    binary.write_bytes(bytes(range(256)))
    out = tmp_path / "out" / "song.wav"
    out.parent.mkdir()
    extra = [str(binary) if e == "BINARY" else e for e in extra]
    rc = main(["render", "music", "--model", str(acestep_folders("turbo")), "--prompt", "x", "--seconds", "1",
               "--out", str(out), *extra])
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("demon: error:") and fragment in lines[0], lines
    assert list(out.parent.iterdir()) == []
