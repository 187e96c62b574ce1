"""A complete ACE-Step 1.5 folder in diffusers layout, loaded component by component.

`model_index.json` names each component's library and class; each loads through
that class from its own subfolder, from local files only and from safetensors only
(a folder whose weights are only pickles is refused, never unpickled). Before any
weight is read the configs are checked against each other, so a folder that cannot
run is one line naming the component, not a shape error deep in a forward pass.

The folder also says how it is played when a request leaves it unsaid: a turbo
checkpoint (guidance distilled into its weights) runs without guidance; a base or
SFT checkpoint runs with APG at diffusers' guidance scale.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import ModelFolderError
from ..weights import card_fields, part_loading, read_json

INDEX = "model_index.json"
REQUIRED = ("vae", "text_encoder", "tokenizer", "transformer", "condition_encoder", "scheduler")
OPTIONAL = ("audio_tokenizer", "audio_token_detokenizer")  # cover needs them
# The components whose class the pipeline's maths assumes; text encoder and tokenizer may be any.
EXPECTED_CLASS = {
    "vae": "AutoencoderOobleck",
    "transformer": "AceStepTransformer1DModel",
    "condition_encoder": "AceStepConditionEncoder",
    "scheduler": "FlowMatchEulerDiscreteScheduler",
    "audio_tokenizer": "AceStepAudioTokenizer",
    "audio_token_detokenizer": "AceStepAudioTokenDetokenizer",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

# AceStepPipeline.__call__'s defaults; a turbo checkpoint forces guidance off.
CALL_STEPS, CALL_GUIDANCE, CALL_SHIFT = 8, 7.0, 3.0


@dataclass(frozen=True)
class FolderDefaults:
    """What a request leaves unsaid takes these (the registry's explicit values win)."""

    steps: int
    shift: float
    guidance: float  # 1: off
    guidance_rule: str  # ACE-Step's own: APG
    distilled: bool  # turbo: guidance is in the weights, so a request may not add more

    def params(self) -> dict[str, Any]:
        """As registry values."""
        return {"steps": self.steps, "shift": self.shift, "guidance": self.guidance,
                "guidance_rule": self.guidance_rule}


@dataclass(frozen=True)
class Distilled:
    """The grid a house turbo transformer was distilled for (its card's `distilled_steps`
    and `distilled_shift`); empty for a real checkpoint, which plays diffusers' defaults."""

    steps: int | None = None
    shift: float | None = None


def folder_defaults(turbo: bool, distilled: Distilled = Distilled()) -> FolderDefaults:
    return FolderDefaults(distilled.steps or CALL_STEPS, distilled.shift or CALL_SHIFT,
                          1.0 if turbo else CALL_GUIDANCE, "apg", distilled=turbo)


def distilled_grid(folder: Path) -> Distilled:
    card = folder / "transformer" / "house.json"
    if not card.is_file():
        return Distilled()
    values = read_json(card)
    with card_fields(card):
        steps, shift = values.get("distilled_steps"), values.get("distilled_shift")
        return Distilled(int(steps) if steps is not None else None, float(shift) if shift is not None else None)


@dataclass(frozen=True)
class AceStepFolder:
    path: Path
    turbo: bool
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: Any
    transformer: torch.nn.Module
    condition_encoder: torch.nn.Module
    audio_tokenizer: torch.nn.Module | None = None
    audio_token_detokenizer: torch.nn.Module | None = None
    distilled: Distilled = Distilled()  # the grid a house turbo was distilled for

    @property
    def variant(self) -> str:
        return "turbo" if self.turbo else "base"

    @property
    def defaults(self) -> FolderDefaults:
        return folder_defaults(self.turbo, self.distilled)


# ---- reading and checking, before any weight loads ----------------------------------------


def read_index(folder: Path) -> dict[str, tuple[str, str]]:
    """Component -> (library, class) of the folder's model_index.json."""
    path = folder / INDEX
    if not path.is_file():
        raise ModelFolderError(f"model folder {folder}: {INDEX} is missing (a complete ACE-Step 1.5 folder has one)")
    index = read_json(path)
    parts = {}
    for name in REQUIRED + OPTIONAL:
        entry = index.get(name)
        if entry is None or entry == [None, None]:
            if name in REQUIRED:
                raise ModelFolderError(f"model folder {folder}: {INDEX} names no {name}")
            continue
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
            raise ModelFolderError(f"model folder {folder}: {INDEX} entry {name} is not [library, class]")
        library, cls = entry
        if name in EXPECTED_CLASS and cls != EXPECTED_CLASS[name]:
            raise ModelFolderError(f"model folder {folder}: {name} is {cls}, expected {EXPECTED_CLASS[name]}")
        parts[name] = (library, cls)
    return parts


def read_config(folder: Path, part: str) -> dict:
    name = {"scheduler": "scheduler_config.json", "tokenizer": "tokenizer_config.json"}.get(part, "config.json")
    path = folder / part / name
    if not (folder / part).is_dir():
        raise ModelFolderError(f"model folder {folder}: component {part}/ is missing")
    if not path.is_file():
        raise ModelFolderError(f"model folder {folder}: {part}/{name} is missing")
    return read_json(path)


def check_weights(folder: Path, part: str) -> None:
    """Refuse a component without safetensors weights (pickled ones are never loaded)."""
    path = folder / part
    if any(path.glob("*.safetensors")) or any(path.glob("*.safetensors.index.json")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ModelFolderError(f"model folder {folder}: {part} has only pickle weights ({', '.join(pickles)}); "
                               "only safetensors load")
    raise ModelFolderError(f"model folder {folder}: {part} has no weights (*.safetensors)")


def width_problem(configs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The first way the components' widths disagree, naming the component; None if they fit."""
    dit, vae, cond, text = (configs[k] for k in ("transformer", "vae", "condition_encoder", "text_encoder"))
    a = dit.get("audio_acoustic_hidden_dim")
    if not isinstance(a, int) or a < 1:
        return f"transformer audio_acoustic_hidden_dim is {a!r}, not a channel count"
    if dit.get("in_channels") != 3 * a:
        return f"transformer in_channels {dit.get('in_channels')} is not 3 x its {a} latent channels"
    if vae.get("decoder_input_channels") != a:
        return f"vae decodes {vae.get('decoder_input_channels')} latent channels but the transformer predicts {a}"
    if vae.get("encoder_hidden_size") != 2 * a:
        return f"vae encoder_hidden_size {vae.get('encoder_hidden_size')} is not 2 x its {a} latent channels"
    if cond.get("timbre_hidden_dim") != a:
        return f"condition_encoder timbre_hidden_dim {cond.get('timbre_hidden_dim')} is not the {a} latent channels"
    if cond.get("text_hidden_dim") != text.get("hidden_size"):
        return (f"condition_encoder text_hidden_dim {cond.get('text_hidden_dim')} does not match the "
                f"text_encoder's hidden_size {text.get('hidden_size')}")
    width = dit.get("encoder_hidden_size") or dit.get("hidden_size")
    if width != cond.get("hidden_size"):
        return (f"transformer encoder width {width} does not match the condition_encoder's "
                f"hidden_size {cond.get('hidden_size')}")
    for part in OPTIONAL:
        if part in configs and configs[part].get("audio_acoustic_hidden_dim") != a:
            return f"{part} audio_acoustic_hidden_dim {configs[part].get('audio_acoustic_hidden_dim')} is not {a}"
    return None


def scheduler_problem(config: Mapping[str, Any]) -> str | None:
    """ACE-Step hands the scheduler its own shifted sigmas: any other shift or timestep
    scale would silently change the maths."""
    if config.get("num_train_timesteps") != 1 or config.get("shift") != 1.0:
        return (f"scheduler has num_train_timesteps={config.get('num_train_timesteps')}, "
                f"shift={config.get('shift')}; ACE-Step needs 1 and 1.0")
    return None


def is_turbo(transformer_config: Mapping[str, Any]) -> bool:
    """As AceStepPipeline decides it: the config's is_turbo flag or model_version "turbo"."""
    return bool(transformer_config.get("is_turbo") or transformer_config.get("model_version") == "turbo")


# ---- loading ---------------------------------------------------------------------------------


def component_class(folder: Path, part: str, library: str, cls: str):
    import diffusers
    import diffusers.pipelines.ace_step as ace_step
    import transformers

    modules = {"diffusers": diffusers, "ace_step": ace_step, "transformers": transformers}
    if library not in modules:
        raise ModelFolderError(f"model folder {folder}: {part} comes from library {library!r}; "
                               f"expected one of {', '.join(modules)}")
    found = getattr(modules[library], cls, None)
    if found is None:
        raise ModelFolderError(f"model folder {folder}: {part} class {library}.{cls} does not exist")
    return found


def _load(folder: Path, part: str, library: str, cls: str):
    found = component_class(folder, part, library, cls)
    path = str(folder / part)
    with part_loading(folder, part):
        if part == "tokenizer":
            return found.from_pretrained(path, local_files_only=True)
        if library == "transformers":
            return found.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                         dtype=torch.float32).eval()
        # low_cpu_mem_usage=False: tiny models load directly (and no advice to install accelerate)
        return found.from_pretrained(path, local_files_only=True, use_safetensors=True, torch_dtype=torch.float32,
                                     low_cpu_mem_usage=False).eval()


def checked_configs(folder: Path) -> tuple[dict[str, tuple[str, str]], dict[str, dict]]:
    """(component -> (library, class), component -> config) of a complete folder, checked
    against each other and for safetensors weights, before any weight is read."""
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist")
    parts = read_index(folder)
    configs = {part: read_config(folder, part) for part in parts}
    for part in parts:
        if part not in ("scheduler", "tokenizer"):
            check_weights(folder, part)
    problem = width_problem(configs) or scheduler_problem(configs["scheduler"])
    if problem:
        raise ModelFolderError(f"model folder {folder}: {problem}")
    return parts, configs


def load_acestep_folder(folder: Path | str) -> AceStepFolder:
    """Every component of a complete ACE-Step 1.5 folder, checked, on the CPU in float32."""
    folder = Path(folder)
    parts, configs = checked_configs(folder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    loaded = {part: _load(folder, part, *parts[part]) for part in parts if part != "scheduler"}
    return AceStepFolder(path=folder, turbo=is_turbo(configs["transformer"]), distilled=distilled_grid(folder), **loaded)
