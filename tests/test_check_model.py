"""`demon check-model DIR`: what a model folder holds, read without loading its weights;
a folder that cannot load is the line loading gives, and exit 2."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from acestep_folder import break_folder, edit_json, without_audio_tokens
from demon.cli import main
from pipelines.music.models import HOUSE_MODELS


def _check(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["check-model", *map(str, argv)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("variant", ["turbo", "base"])
def test_a_complete_folder_is_described(acestep_folders, capsys, variant):
    folder = acestep_folders(variant)
    _check(capsys, folder)  # the first call pays for the imports
    start = time.perf_counter()
    rc, out, err = _check(capsys, folder)
    took = time.perf_counter() - start
    print(f"check-model on the tiny {variant} folder: {took:.2f} s")
    assert rc == 0 and err == ""
    assert f"variant     {variant}" in out
    for part, cls in (("vae", "AutoencoderOobleck"), ("text_encoder", "Qwen3Model"), ("tokenizer", "Qwen2Tokenizer"),
                      ("transformer", "AceStepTransformer1DModel"), ("condition_encoder", "AceStepConditionEncoder"),
                      ("scheduler", "FlowMatchEulerDiscreteScheduler"), ("audio_tokenizer", "AceStepAudioTokenizer"),
                      ("audio_token_detokenizer", "AceStepAudioTokenDetokenizer")):
        assert any(line.split()[:2] == [part, cls] for line in out.splitlines()), (part, out)
    assert "widths      latent channels 8, DiT hidden 32 x 2 layers, text 16, condition 32" in out
    assert "audio       48000 Hz, 2 channels, hop 1920 (25 latent frames/s)" in out
    assert "tasks       text2music, audio-to-audio, repaint, cover" in out
    guidance = "1" if variant == "turbo" else "7"
    assert f"defaults    steps 8, shift 3, guidance {guidance}, guidance_rule apg" in out
    assert took < 3.0


def test_the_counts_are_the_loaded_models(acestep_folders, capsys):
    """Parameters from the meta-device build and values from the headers equal what loading gives."""
    from pipelines.music.folder import load_acestep_folder

    folder = acestep_folders("turbo")
    rc, out, _ = _check(capsys, folder, "--json")
    found = json.loads(out)
    assert rc == 0 and found["variant"] == "turbo"
    loaded = load_acestep_folder(folder)
    numel = 0
    for c in found["components"]:
        if c["name"] in ("tokenizer", "scheduler"):
            continue
        module = getattr(loaded, c["name"])
        assert c["params"] == sum(p.numel() for p in module.parameters()), c["name"]
        numel += sum(t.numel() for t in module.state_dict().values())
    assert sum(found["weight_bytes"].values()) == 4 * numel  # the tiny folder is float32 throughout
    assert found["weight_bytes_loaded"]["bf16"] == 2 * numel
    assert found["audio"] == {"sample_rate": 48000, "channels": 2, "hop": 1920, "frame_rate": 25.0}


def test_a_folder_without_the_audio_tokenizer_cannot_cover(acestep_folders, tmp_path, capsys):
    folder = without_audio_tokens(shutil.copytree(acestep_folders("base"), tmp_path / "model"))
    rc, out, _ = _check(capsys, folder)
    assert rc == 0 and "tasks       text2music, audio-to-audio, repaint\n" in out
    assert "audio_tokenizer" not in out


def test_the_house_folder_is_described(capsys):
    rc, out, err = _check(capsys, HOUSE_MODELS)
    assert rc == 0 and err == ""
    assert "variant     base\n" in out
    assert "audio       16000 Hz, 1 channel, hop 640 (25 latent frames/s)" in out
    assert "widths      latent channels 16, DiT hidden 256 x 4 layers, text 384, condition 256" in out
    assert "tasks       text2music, audio-to-audio, repaint\n" in out
    assert "defaults    steps 8, shift 3, guidance 7, guidance_rule apg" in out
    names = {tuple(line.split()[:2]) for line in out.splitlines()}
    assert {("text_encoder", "BertModel"), ("condition_encoder", "AceStepConditionEncoder")} <= names


WIDTH = "config condition_encoder text_hidden_dim 24"
SCHEDULER = "config scheduler shift 3.0"
LAYERS = "config transformer num_hidden_layers 3"
SHAPE = "config condition_encoder intermediate_size 48"
# the folder checks loading makes: check-model says the very line a render would
LOADING = ["no index", "no component", "pickle weights", WIDTH, SCHEDULER]


@pytest.mark.parametrize("how,fragment", [
    ("no index", "model_index.json is missing"),
    ("no component", "component condition_encoder/ is missing"),
    ("pickle weights", "text_encoder has only pickle weights (pytorch_model.bin)"),
    (WIDTH, "condition_encoder text_hidden_dim 24 does not match"),
    (SCHEDULER, "scheduler has num_train_timesteps=1, shift=3.0"),
    (LAYERS, "transformer weights lack 19 tensor(s) its config needs (first: layers.2.cross_attn.norm_k.weight)"),
    (SHAPE, "condition_encoder tensor lyric_encoder.layers.0.mlp.down_proj.weight is [32, 64] in the weights "
              "but [32, 48] by its config"),
    ("not safetensors", "vae/diffusion_pytorch_model.safetensors is not a safetensors file"),
])
def test_a_bad_folder_is_one_line_and_exit_2(acestep_folders, tmp_path, capsys, how, fragment):
    folder = break_folder(shutil.copytree(acestep_folders("turbo"), tmp_path / "model"), how)
    rc, out, err = _check(capsys, folder)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1 and lines[0].startswith("demon: error:"), (rc, out, err)
    assert fragment in lines[0], lines[0]
    if how in LOADING:
        wav = tmp_path / "x.wav"
        assert main(["render", "music", "--model", str(folder), "--prompt", "x", "--seconds", "1",
                     "--out", str(wav)]) == 2
        assert capsys.readouterr().err.strip() == lines[0]


def test_a_missing_folder_and_a_broken_house_folder(tmp_path, capsys):
    rc, _, err = _check(capsys, tmp_path / "nope")
    assert rc == 2 and err.strip() == f"demon: error: model folder {tmp_path / 'nope'} does not exist"
    house = shutil.copytree(HOUSE_MODELS, tmp_path / "house", symlinks=True)
    edit_json(house / "transformer" / "config.json", encoder_hidden_size=512)
    rc, _, err = _check(capsys, house)
    assert rc == 2 and "transformer encoder width 512 does not match the condition_encoder's hidden_size 256" in err
    assert len(err.strip().splitlines()) == 1
