"""The house models as a complete ACE-Step 1.5 folder: trained as the pipeline conditions, saved as diffusers saves."""

from __future__ import annotations

import json

import pytest
import torch

from pipelines.music.conditioning import silence_context
from pipelines.music.house_folder import build_condition_encoder
from pipelines.music.train_folder import condition, repaint_context


def test_training_conditions_as_the_condition_encoder_does():
    """The trainer runs the constant lyric and timbre parts once per batch; each row must
    still equal what AceStepConditionEncoder gives that row alone at inference."""
    torch.manual_seed(0)
    encoder = build_condition_encoder(torch.randn(1, 15000, 16)).eval()
    caption, lyrics = torch.randn(3, 11, 384), torch.randn(1, 7, 384)
    with torch.no_grad():
        batched = condition(encoder, caption, lyrics, 750)
        for row in range(3):
            alone, _ = encoder(text_hidden_states=caption[row : row + 1],
                               text_attention_mask=torch.ones(1, 11, dtype=torch.bool),
                               lyric_hidden_states=lyrics, lyric_attention_mask=torch.ones(1, 7, dtype=torch.bool),
                               refer_audio_acoustic_hidden_states_packed=encoder.silence_latent[:, :750],
                               refer_audio_order_mask=torch.zeros(1, dtype=torch.long))
            assert torch.allclose(batched[row], alone[0], atol=1e-6)


def test_a_repaint_context_keeps_the_clip_outside_its_window():
    torch.manual_seed(0)
    x0, silence = torch.randn(4, 40, 16), torch.randn(100, 16)
    context = repaint_context(x0, silence, torch.Generator().manual_seed(1))
    src, mask = context[..., :16], context[..., 16:]
    inside = mask[..., 0] > 0.5
    assert inside.any(dim=1).all() and (~inside).any(dim=1).all()
    assert torch.equal(mask, inside[..., None].float().expand_as(mask))
    assert torch.equal(src[~inside], x0[~inside])
    assert torch.equal(src[inside], silence[:40][None].expand_as(x0)[inside])
    # text-to-music: the whole clip is the window and the source is silence
    full = silence_context(silence, 40)
    assert torch.equal(full[:, 16:], torch.ones(40, 16)) and torch.equal(full[:, :16], silence[:40])


def test_a_saved_house_folder_loads_in_diffusers_and_renders_here(tmp_path):
    """The house VAE, the linked MiniLM and a fresh condition encoder and DiT, saved as the
    trainer saves them: diffusers' AceStepPipeline loads and runs the folder, and the same
    folder renders through our loader with a base folder's defaults."""
    from diffusers import AceStepPipeline

    from pipelines.music.house_folder import build_transformer, load_text_parts, save_folder, silence_latent
    from pipelines.music.models import HOUSE_MODELS, load_codec, load_music_models
    from pipelines.music.render import MusicJob, render_music
    from pipelines.music.text_parts import link_text_parts

    out = tmp_path / "house"
    link_text_parts(out)
    tokenizer, text_encoder = load_text_parts(out)
    vae = load_codec(HOUSE_MODELS).vae
    encoder = build_condition_encoder(silence_latent(vae))
    save_folder(out, HOUSE_MODELS / "vae", vae, tokenizer, text_encoder, build_transformer(), encoder)
    index = json.loads((out / "model_index.json").read_text())
    assert index["text_encoder"] == ["transformers", "BertModel"]
    assert index["condition_encoder"] == ["ace_step", "AceStepConditionEncoder"]

    pipe = AceStepPipeline.from_pretrained(str(out), local_files_only=True, dtype=torch.float32)
    latents = pipe("lofi piano", audio_duration=1.0, num_inference_steps=2, output_type="latent",
                   generator=torch.Generator("cpu").manual_seed(0)).audios
    assert latents.shape == (1, 25, 16) and torch.isfinite(latents).all()

    models = load_music_models(out)
    assert models.defaults.guidance_rule == "apg" and models.defaults.guidance > 1
    audio = render_music(models, MusicJob("lofi piano", 1.0, {"seed": 0, "steps": 2}))
    assert audio.shape == (vae.config.sampling_rate,)


@pytest.mark.parametrize("which, steps", [("base", 4), ("turbo", 2)])
def test_diffusers_runs_the_shipped_house_folders_as_we_render_them(which, steps):
    """models/music (base) and models/music_turbo (distilled to 2 steps) are complete
    folders: AceStepPipeline loads each from disk and draws the latents our render draws
    for the same prompt, seed and steps (the turbo without guidance, as both decide)."""
    from diffusers import AceStepPipeline

    from pipelines.music.models import HOUSE_MODELS, HOUSE_TURBO, load_music_models
    from pipelines.music.render import MusicJob, generate_latents

    folder = {"base": HOUSE_MODELS, "turbo": HOUSE_TURBO}[which]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "AceStepPipeline" and index["condition_encoder"][1] == "AceStepConditionEncoder"
    pipe = AceStepPipeline.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32,
                                           low_cpu_mem_usage=False)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer.config.is_turbo == (which == "turbo")
    prompt = "lofi piano and drums, 84 bpm, A minor"
    theirs = pipe(prompt=prompt, audio_duration=2.0, num_inference_steps=steps, output_type="latent",
                  generator=torch.Generator("cpu").manual_seed(3)).audios[0]
    models = load_music_models(folder)
    if which == "turbo":
        assert models.defaults.distilled and models.defaults.steps == 2 and models.defaults.guidance == 1.0
    ours = generate_latents(models, MusicJob(prompt, 2.0, {"seed": 3, "steps": steps}))
    assert theirs.shape == ours.shape == (50, 16)
    diff = (theirs - ours).abs().max().item()
    print(f"house {which} folder: max |ours - diffusers| = {diff:.3g}")
    assert diff < 1e-4
