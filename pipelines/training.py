"""What every house-model training loop shares: a timed budget and one optimiser step."""

from __future__ import annotations

import math
import sys
import time

import torch


class Budget:
    """Wall-clock training budget with a warm-up then cosine learning-rate schedule."""

    def __init__(self, minutes: float, lr: float, warmup_steps: int = 0):
        self.seconds = minutes * 60.0
        self.lr = lr
        self.warmup = warmup_steps
        self.start = time.time()
        self.step = 0
        self.log: list[tuple[int, int, float]] = []

    @property
    def elapsed(self) -> float:
        return time.time() - self.start

    def running(self) -> bool:
        return self.elapsed < self.seconds

    def rate(self) -> float:
        warm = min(1.0, (self.step + 1) / self.warmup) if self.warmup else 1.0
        return self.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, self.elapsed / self.seconds)))

    def update(self, opt: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor,
               every: int = 50) -> None:
        """One step: set the rate, backpropagate, clip gradients at 1, step; log now and then."""
        lr = self.rate()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        self.step += 1
        if self.step % every == 0:
            value = round(float(loss.detach()), 4)
            self.log.append((self.step, round(self.elapsed), value))
            print(f"step {self.step} t {self.elapsed:.0f}s loss {value:.4f} lr {lr:.2e}", file=sys.stderr, flush=True)
