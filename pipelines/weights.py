"""Module weights as safetensors, one file a module; a missing or mismatched file is a ModelFolderError."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelFolderError


def save_module(module: torch.nn.Module, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))


def load_module(module: torch.nn.Module, path: Path, how_to_make: str) -> torch.nn.Module:
    """Load `path` into `module` and freeze it for inference."""
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing ({how_to_make})")
    try:
        module.load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError, SafetensorError) as err:  # wrong shapes or not a safetensors file
        raise ModelFolderError(f"{path}: not weights of this model ({str(err).splitlines()[0]})") from None
    return module.eval().requires_grad_(False)
