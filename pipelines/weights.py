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
        doc = json.loads(path.read_bytes(), parse_constant=_no_constant)
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
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:  # RuntimeError: torch refusing a size
        raise ModelFolderError(f"{path}: bad {what} ({type(err).__name__}: {err})") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a model may hold")


@contextmanager
def part_loading(folder: Path, part: str) -> Iterator[None]:
    """Loading one component with diffusers, transformers, tokenizers or safetensors. Each
    raises types of its own for a corrupted file (tokenizers a bare Exception, safetensors
    SafetensorError, huggingface_hub a strict-dataclass validation error), none of them a
    contract: whatever one raises becomes one line naming the component."""
    try:
        yield
    except ModelFolderError:
        raise
    except Exception as err:  # noqa: BLE001 - see above: the boundary with third-party loaders
        text = str(err).strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        raise ModelFolderError(f"model folder {folder}: {part} does not load ({reason})") from None
