"""Training losses shared by the audio pipelines (torch)."""

from __future__ import annotations

import torch

FFT_SIZES = (256, 512, 1024, 2048)


def mrstft_loss(pred: torch.Tensor, target: torch.Tensor, fft_sizes: tuple[int, ...] = FFT_SIZES) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + mean |log magnitude difference|, averaged over sizes."""
    total = pred.new_zeros(())
    for n in fft_sizes:
        window = torch.hann_window(n)
        p = torch.stft(pred.flatten(0, -2), n, n // 4, window=window, return_complex=True).abs()
        t = torch.stft(target.flatten(0, -2), n, n // 4, window=window, return_complex=True).abs()
        sc = torch.linalg.norm(t - p) / (torch.linalg.norm(t) + 1e-7)
        mag = (torch.log(p + 1e-5) - torch.log(t + 1e-5)).abs().mean()
        total = total + sc + mag
    return total / len(fft_sizes)
