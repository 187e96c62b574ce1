"""Model folders: house layout and real ACE-Step 1.5 folders load through the same code."""

import json

import pytest
import torch

from conftest import tiny_folder
from pipelines.music.models import ModelFolderError, load_music_models


def test_a_saved_checkpoint_loads_back_identically(tmp_path):
    vae, dit = tiny_folder(tmp_path)
    models = load_music_models(tmp_path)
    for ours, theirs in ((models.codec.vae, vae), (models.transformer, dit)):
        a, b = ours.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # no card: the halo is measured on load and latents are left as they are
    assert models.codec.geometry.hop == 640 and models.codec.geometry.halo >= 1
    assert torch.equal(models.codec.latent_std, torch.ones(16))


def test_missing_and_wrong_folders_are_clear_errors(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_music_models(tmp_path / "nope")
    with pytest.raises(ModelFolderError, match="vae/config.json is missing"):
        load_music_models(tmp_path)
    tiny_folder(tmp_path)
    (tmp_path / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="only safetensors"):
        load_music_models(tmp_path)
    config = tmp_path / "vae" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "_class_name": "UNet2DModel"}))
    with pytest.raises(ModelFolderError, match="expected AutoencoderOobleck"):
        load_music_models(tmp_path)


def test_mismatched_latent_channels_are_refused(tmp_path):
    tiny_folder(tmp_path, channels=16)
    other = tmp_path / "other"
    tiny_folder(other, channels=8)
    (tmp_path / "transformer").rename(tmp_path / "t16")
    (other / "transformer").rename(tmp_path / "transformer")
    with pytest.raises(ModelFolderError, match="latent channels"):
        load_music_models(tmp_path)


def test_a_folder_without_latent_statistics_says_its_latents_are_raw(tmp_path, capsys):
    tiny_folder(tmp_path)
    load_music_models(tmp_path)
    err = capsys.readouterr().err
    assert err.count("latents are used raw (mean 0, std 1)") == 1 and str(tmp_path) in err
