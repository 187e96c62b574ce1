"""Choosing the backend a denoiser runs on: one enum, one factory, no silent fallback.

Light at import (no torch): the CLI reads the names from here.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BackendError

if TYPE_CHECKING:
    from engine import TorchDenoiser

    from .export import ExportSpec


class Backend(enum.Enum):
    TORCH = "torch"
    TORCH_COMPILE = "torch-compile"
    ORT = "ort"
    TENSORRT = "tensorrt"

    @classmethod
    def parse(cls, value: str) -> "Backend":
        try:
            return cls(value)
        except ValueError:
            raise BackendError(f"unknown backend {value!r}; choose from {', '.join(b.value for b in cls)}") from None


BACKEND_NAMES = tuple(b.value for b in Backend)


def make_denoiser(backend: Backend, spec: ExportSpec, eager: TorchDenoiser, *, cache: Path | None = None,
                  threads: int | None = None, precision: str = "fp16"):
    """The Denoiser for `spec` on `backend`; `eager` is the torch one the pipeline built.

    ort and tensorrt export `spec` (once per export key, cached) and run the file;
    torch-compile wraps the same module in torch.compile with dynamic shapes.
    """
    from .export import default_cache

    cache = cache or default_cache()
    if backend is Backend.TORCH:
        return eager
    if backend is Backend.TORCH_COMPILE:
        return _compiled(spec, eager)
    if backend is Backend.ORT:
        from .ort import OrtDenoiser

        return OrtDenoiser(spec, cache, threads)
    if backend is Backend.TENSORRT:
        from .tensorrt import TrtDenoiser

        return TrtDenoiser(spec, cache, precision=precision)
    raise BackendError(f"no factory for backend {backend}")


def _compiled(spec: ExportSpec, eager: TorchDenoiser) -> TorchDenoiser:
    """torch.compile of the exported callable; shapes marked dynamic so ring depths do not recompile."""
    import torch

    from engine import TorchDenoiser

    try:
        compiled = torch.compile(spec.module, dynamic=True)
    except Exception as err:  # e.g. no C++ compiler for the inductor's CPU kernels
        raise BackendError(f"torch.compile is not available here: {err}".splitlines()[0]) from err
    keys = spec.inputs[2:]

    def call(x, sigma, cond):
        return compiled(x, sigma, *(cond[k] for k in keys))

    denoiser = TorchDenoiser(eager.module, call)
    denoiser.name = "torch-compile"
    return denoiser
