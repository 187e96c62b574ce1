"""What a music model folder holds, read without running it (`demon check-model`).

The configs are read and checked by the same functions loading uses (folder.py), so a
bad folder fails here with the line loading would give. Then each torch component is built from its config on the
meta device (no memory, no weights) and compared tensor by tensor with its
safetensors headers (names, shapes and dtypes; no tensor is read): weights that
loading would fill with random values, or refuse for a shape, are found without
loading them. Only the tokenizer really loads (it is small).
"""

from __future__ import annotations

import enum
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import ModelFolderError
from ..weights import part_loading
from .folder import OPTIONAL, checked_configs, component_class, distilled_grid, folder_defaults, is_turbo

ITEM_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
              "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
FLOATS = ("F64", "F32", "BF16", "F16", "F8_E4M3", "F8_E5M2")  # what a load in another dtype converts
# what `from_pretrained` reads from a component's folder (one file, or shards named by an index)
WEIGHT_FILES = {"diffusers": "diffusion_pytorch_model.safetensors", "transformers": "model.safetensors"}


class Variant(enum.Enum):
    TURBO = "turbo"  # guidance distilled into the weights
    BASE = "base"
    SFT = "sft"


class Task(enum.Enum):
    TEXT2MUSIC = "text2music"
    AUDIO2AUDIO = "audio-to-audio"
    REPAINT = "repaint"
    COVER = "cover"


@dataclass(frozen=True)
class Weights:
    """A component's safetensors as their headers describe them."""

    files: tuple[str, ...]
    shapes: Mapping[str, tuple[int, ...]]
    numel_by_dtype: Mapping[str, int]

    @property
    def numel(self) -> int:
        return sum(self.numel_by_dtype.values())

    @property
    def bytes_by_dtype(self) -> dict[str, int]:
        return {dtype: n * ITEM_BYTES.get(dtype, 4) for dtype, n in sorted(self.numel_by_dtype.items())}

    def bytes_as(self, item_bytes: int) -> int:
        """Bytes once loaded with every float tensor in a dtype of `item_bytes` (the rest as stored)."""
        return sum(n * item_bytes if dtype in FLOATS else n * ITEM_BYTES.get(dtype, 4)
                   for dtype, n in self.numel_by_dtype.items())


@dataclass(frozen=True)
class Component:
    name: str
    cls: str
    params: int = 0  # parameters of the class built from the config (0: no torch module)
    weights: Weights | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int
    channels: int
    hop: int  # samples per latent frame

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop


@dataclass(frozen=True)
class Widths:
    latent_channels: int
    hidden_size: int  # the DiT's
    layers: int  # the DiT's
    text_width: int  # what the text encoder emits
    condition_width: int  # what the DiT cross-attends to


@dataclass(frozen=True)
class Inventory:
    folder: Path
    variant: Variant
    components: tuple[Component, ...]
    widths: Widths
    audio: AudioFormat
    tasks: tuple[Task, ...]
    defaults: Mapping[str, Any]  # what a request leaves unsaid
    notes: tuple[str, ...] = ()

    def weight_bytes(self) -> dict[str, int]:
        """Bytes of all weights as stored, by dtype."""
        total: Counter = Counter()
        for c in self.components:
            if c.weights is not None:
                total.update(c.weights.bytes_by_dtype)
        return dict(sorted(total.items()))

    def numel(self) -> int:
        return sum(c.weights.numel for c in self.components if c.weights is not None)

    def bytes_as(self, item_bytes: int) -> int:
        """Bytes of all weights loaded with float tensors of `item_bytes` each (4: float32, 2: bf16)."""
        return sum(c.weights.bytes_as(item_bytes) for c in self.components if c.weights is not None)


# ---- the pieces ---------------------------------------------------------------------------


def variant_of(transformer_config: Mapping[str, Any]) -> Variant:
    if is_turbo(transformer_config):
        return Variant.TURBO
    return Variant.SFT if transformer_config.get("model_version") == "sft" else Variant.BASE


def audio_format(vae_config: Mapping[str, Any]) -> AudioFormat:
    return AudioFormat(int(vae_config["sampling_rate"]), int(vae_config["audio_channels"]),
                       math.prod(vae_config["downsampling_ratios"]))


def weight_files(folder: Path, part: str, library: str) -> list[Path]:
    """The files `from_pretrained` reads: the one weights file, or the shards its index names."""
    path = folder / part
    single = path / WEIGHT_FILES.get(library, WEIGHT_FILES["diffusers"])
    index = single.with_name(single.name + ".index.json")
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, AttributeError) as err:
            raise ModelFolderError(f"model folder {folder}: {part}/{index.name} is not a weight index ({err})") from None
        return [path / name for name in shards]
    if single.is_file():
        return [single]
    raise ModelFolderError(f"model folder {folder}: {part}/{single.name} is missing (only safetensors load)")


def read_weights(folder: Path, part: str, files: list[Path]) -> Weights:
    """Names, shapes and dtypes from the headers; no tensor is read."""
    from safetensors import SafetensorError, safe_open

    shapes, numel = {}, Counter()
    for path in files:
        if not path.is_file():
            raise ModelFolderError(f"model folder {folder}: {part}/{path.name} is missing")
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    view = handle.get_slice(key)
                    shapes[key] = tuple(view.get_shape())
                    numel[view.get_dtype()] += math.prod(shapes[key])
        except (SafetensorError, OSError) as err:
            raise ModelFolderError(f"model folder {folder}: {part}/{path.name} is not a safetensors file "
                                   f"({str(err).splitlines()[0]})") from None
    return Weights(tuple(p.name for p in files), shapes, dict(numel))


def meta_module(folder: Path, part: str, library: str, cls_name: str, config: Mapping[str, Any]):
    """The component's class built from its config on the meta device (no memory)."""
    cls = component_class(folder, part, library, cls_name)
    try:
        with torch.device("meta"):
            if library == "transformers":
                return cls(cls.config_class.from_dict(dict(config)))
            return cls.from_config(dict(config))
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFolderError(f"model folder {folder}: {part} does not build from its config ({reason})") from None


def weights_problem(part: str, expected: Mapping[str, tuple], found: Mapping[str, tuple]) -> str | None:
    """Where the weights do not fit the class their config builds: a tensor loading would
    leave random, or one whose shape it would refuse."""
    missing = sorted(set(expected) - set(found))
    if missing:
        return f"{part} weights lack {len(missing)} tensor(s) its config needs (first: {missing[0]})"
    for key in sorted(expected):
        if tuple(expected[key]) != found[key]:
            return f"{part} tensor {key} is {list(found[key])} in the weights but {list(expected[key])} by its config"
    return None


def check_component(folder: Path, part: str, library: str, cls_name: str, config: Mapping[str, Any],
                    files: list[Path]) -> Component:
    module = meta_module(folder, part, library, cls_name, config)
    weights = read_weights(folder, part, files)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    problem = weights_problem(part, expected, weights.shapes)
    if problem:
        raise ModelFolderError(f"model folder {folder}: {problem}")
    unused = sorted(set(weights.shapes) - set(expected))
    notes = (f"{len(unused)} tensor(s) in the weights that the class does not use (first: {unused[0]})",) if unused else ()
    return Component(part, cls_name, sum(p.numel() for p in module.parameters()), weights, notes)


def _tokenizer(folder: Path, library: str, cls_name: str, text_vocab: int | None) -> Component:
    cls = component_class(folder, "tokenizer", library, cls_name)
    with part_loading(folder, "tokenizer"):
        tokenizer = cls.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
    if tokenizer.pad_token is None:  # AceStepPipeline pads every batch, even of one
        raise ModelFolderError(f"model folder {folder}: tokenizer has no pad token")
    if text_vocab is not None and len(tokenizer) > text_vocab:
        raise ModelFolderError(f"model folder {folder}: tokenizer has {len(tokenizer)} tokens but the "
                               f"text_encoder embeds only {text_vocab}")
    return Component("tokenizer", type(tokenizer).__name__, notes=(f"{len(tokenizer)} tokens",))


def inventory(folder: Path | str) -> Inventory:
    """Everything `demon check-model` reports about a folder; ModelFolderError if it cannot load."""
    parts, configs = checked_configs(Path(folder))
    folder = Path(folder)
    components = []
    for part, (library, cls_name) in parts.items():
        if part == "tokenizer":
            components.append(_tokenizer(folder, library, cls_name, configs["text_encoder"].get("vocab_size")))
        elif part == "scheduler":
            components.append(Component(part, cls_name, notes=(
                f"num_train_timesteps {configs[part].get('num_train_timesteps')}, shift {configs[part].get('shift')}",)))
        else:
            components.append(check_component(folder, part, library, cls_name, configs[part],
                                              weight_files(folder, part, library)))
    dit, cond = configs["transformer"], configs["condition_encoder"]
    widths = Widths(dit["audio_acoustic_hidden_dim"], dit["hidden_size"], dit["num_hidden_layers"],
                    configs["text_encoder"]["hidden_size"], cond["hidden_size"])
    tasks = [Task.TEXT2MUSIC, Task.AUDIO2AUDIO, Task.REPAINT]
    if all(part in parts for part in OPTIONAL):
        tasks.append(Task.COVER)
    variant = variant_of(dit)
    defaults = folder_defaults(variant is Variant.TURBO, distilled_grid(folder)).params()
    return Inventory(folder, variant, tuple(components), widths, audio_format(configs["vae"]), tuple(tasks), defaults)
