"""What a model folder holds: module weights as safetensors (one file a module) and
JSON cards. A missing, corrupted or mismatched file is a ModelFolderError naming it."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


def read_json(path: Path, how_to_make: str = "") -> dict:
    """A JSON object from a model folder (a card or a config)."""
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing" + (f" ({how_to_make})" if how_to_make else ""))
    try:
        doc = json.loads(path.read_bytes())
    except OSError as err:
        raise ModelFolderError(f"{path}: cannot read ({err.strerror or err})") from None
    except (ValueError, RecursionError) as err:  # not JSON, not UTF-8, or nested past the parser
        raise ModelFolderError(f"{path}: not JSON ({str(err).splitlines()[0] if str(err) else 'nested too deeply'})") from None
    if not isinstance(doc, dict):
        raise ModelFolderError(f"{path}: expected a JSON object, found {type(doc).__name__}")
    return doc


@contextmanager
def card_fields(path: Path, what: str = "field") -> Iterator[None]:
    """Reading fields (`what`) of the card at `path`: a missing key or a value of the wrong
    type or range is a ModelFolderError naming the card."""
    try:
        yield
    except ModelFolderError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ModelFolderError(f"{path}: bad {what} ({type(err).__name__}: {err})") from None
