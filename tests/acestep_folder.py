"""Test helpers for complete ACE-Step folders: the tiny folder's builder (in
pipelines/music/tiny_folder.py) and ways to break a copied folder."""

from __future__ import annotations

from pathlib import Path

from pipelines.music.tiny_folder import build_folder, build_pipeline  # noqa: F401  (the tests' import point)


def without_audio_tokens(folder: Path | str) -> Path:
    """Turn a (copied) folder into one without audio_tokenizer and audio_token_detokenizer:
    their subfolders and their model_index.json entries removed, as a folder converted
    from a checkpoint without them would be."""
    import json
    import shutil

    folder = Path(folder)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    for part in ("audio_tokenizer", "audio_token_detokenizer"):
        shutil.rmtree(folder / part)
        index.pop(part)
    index_path.write_text(json.dumps(index, indent=2))
    return folder


def edit_json(path: Path, **change) -> None:
    """Overwrite keys of the JSON object in `path`."""
    import json

    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))


def break_folder(folder: Path, how: str) -> Path:
    """Break a (copied) folder one way and return it. `how`: "no index", "no component"
    (condition_encoder), "pickle weights" (text_encoder), "not safetensors" (vae), or
    "config PART KEY VALUE" (PART's config gets KEY = VALUE, VALUE read as JSON)."""
    import json
    import shutil

    if how == "no index":
        (folder / "model_index.json").unlink()
    elif how == "no component":
        shutil.rmtree(folder / "condition_encoder")
    elif how == "pickle weights":
        (folder / "text_encoder" / "model.safetensors").rename(folder / "text_encoder" / "pytorch_model.bin")
    elif how == "not safetensors":
        (folder / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 64)
    elif how.startswith("config "):
        _, part, key, value = how.split(" ")
        edit_json(folder / part / ("scheduler_config.json" if part == "scheduler" else "config.json"),
                  **{key: json.loads(value)})
    else:
        raise ValueError(f"no way to break a folder called {how!r}")
    return folder
