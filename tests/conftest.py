"""Shared fixtures: a tiny transformer denoiser that runs in milliseconds."""

from __future__ import annotations

import pytest
import torch

from engine import TorchDenoiser

FRAMES, CHANNELS, TEXT = 24, 8, 6
SHAPE = (FRAMES, CHANNELS)


class TinyTransformer(torch.nn.Module):
    """A small attention denoiser: latent (B, T, C), one sigma per row, a text vector."""

    def __init__(self, channels: int = CHANNELS, hidden: int = 32, text: int = TEXT):
        super().__init__()
        self.inp = torch.nn.Linear(channels, hidden)
        self.time = torch.nn.Linear(1, hidden)
        self.text = torch.nn.Linear(text, hidden)
        self.block = torch.nn.TransformerEncoderLayer(hidden, 4, 64, batch_first=True, dropout=0.0)
        self.out = torch.nn.Linear(hidden, channels)

    def forward(self, x, sigma, cond):
        h = self.inp(x) + self.time(sigma[:, None, None]) + self.text(cond["text"])[:, None, :]
        return self.out(self.block(h))


@pytest.fixture(scope="session")
def denoiser():
    torch.manual_seed(1234)
    model = TinyTransformer()
    return TorchDenoiser(model, lambda x, s, c: model(x, s, c))


@pytest.fixture
def null_cond():
    return {"text": torch.zeros(TEXT)}


def text(seed: int) -> dict[str, torch.Tensor]:
    return {"text": torch.randn(TEXT, generator=torch.Generator().manual_seed(seed))}


def latent(seed: int) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))
