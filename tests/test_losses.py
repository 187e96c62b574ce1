"""The training losses: what they reward and penalise."""

import math

import torch

from pipelines.losses import chroma_loss, mrstft_loss

SR = 16000


def tone(freq: float, seconds: float = 0.64, amp: float = 0.3) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    return (amp * torch.sin(2 * math.pi * freq * t))[None, None]


def test_chroma_loss_sees_pitch_class_more_than_octave_or_level():
    a4 = tone(440.0)
    assert float(chroma_loss(a4, a4, SR)) == 0.0
    octave = float(chroma_loss(tone(220.0), a4, SR))  # the same pitch class an octave down
    tritone = float(chroma_loss(tone(311.1), a4, SR))  # nearly all mass in another class
    quieter = float(chroma_loss(tone(440.0, amp=0.2), a4, SR))  # measured against the target's level
    noise = float(chroma_loss(0.05 * torch.randn(a4.shape, generator=torch.Generator().manual_seed(0)), a4, SR))
    assert octave < 0.25 and tritone > 1.5 and noise > 1.0
    assert abs(quieter - 1 / 3) < 0.02


def test_mrstft_floor_shifts_weight_to_loud_bins():
    """With a floor near typical magnitudes, a difference in near-silent bins costs little;
    with 1e-5 it costs as much as a wrong partial."""
    a4 = tone(440.0)
    hiss = a4 + 1e-4 * torch.randn(a4.shape, generator=torch.Generator().manual_seed(1))
    wrong = tone(466.2)
    low, high = mrstft_loss(hiss, a4, floor=1e-5), mrstft_loss(hiss, a4, floor=0.05)
    assert float(high) < 0.2 * float(low)
    assert float(mrstft_loss(wrong, a4, floor=0.05)) > 5 * float(high)
