"""Model folders: the house models and real ACE-Step 1.5 folders load through one code path."""

import shutil

import pytest
import torch

from acestep_folder import build_pipeline
from pipelines.music import models as music_models
from pipelines.music.models import ModelFolderError, load_music_models


def test_a_saved_folder_loads_back_identically(tmp_path):
    pipe = build_pipeline("base", seed=3, audio="16k")
    pipe.save_pretrained(str(tmp_path), safe_serialization=True)
    models = load_music_models(tmp_path)
    for ours, theirs in ((models.codec.vae, pipe.vae), (models.transformer, pipe.transformer),
                         (models.conditioner.condition_encoder, pipe.condition_encoder)):
        a, b = ours.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # no card: the halo is measured on load; latents are raw, as ACE-Step's are
    assert models.codec.geometry.hop == 640 and models.codec.geometry.halo >= 1
    assert torch.equal(models.codec.latent_std, torch.ones(models.codec.channels))
    assert models.codec.sample_rate == 16_000 and models.codec.audio_channels == 1


def test_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_music_models(tmp_path / "nope")
    with pytest.raises(ModelFolderError, match="model_index.json is missing"):
        load_music_models(tmp_path)


def test_the_house_folder_without_its_linked_minilm_says_to_run_setup(tmp_path, monkeypatch):
    house = shutil.copytree(music_models.HOUSE_MODELS, tmp_path / "music", symlinks=True)
    shutil.rmtree(house / "tokenizer")
    monkeypatch.setattr(music_models, "HOUSE_MODELS", house)
    with pytest.raises(ModelFolderError, match=r"tokenizer/ lacks .*run `make setup`"):
        load_music_models()
