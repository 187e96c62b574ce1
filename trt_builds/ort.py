"""ONNX Runtime on the CPU: a session per exported part, and the Denoiser protocol over it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from .errors import BackendError
from .export import ExportSpec, cached_export, pad_to_multiples, split_axis


def cpu_threads() -> int:
    """The cores this process may use (affinity and CI limits, capped by OMP_NUM_THREADS when
    set, as torch's own pool is), not the host's total."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores)


def session(path: Path, threads: int | None = None):
    """An ORT CPU session with every graph optimisation, intra-op threads = our cores.

    Inter-op parallelism stays 1: these graphs are chains, and a second pool would
    only fight the first for the same cores (and the audio thread).
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise BackendError(f"--backend ort needs onnxruntime ({err})") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise BackendError(f"ONNX Runtime cannot load {path}: {err}".splitlines()[0]) from err


class OrtPart:
    """A session called like the torch module it was exported from: tensors in, tensors out."""

    def __init__(self, spec: ExportSpec, path: Path, threads: int | None = None):
        self.spec = spec
        self.path = path
        self.session = session(path, threads)
        names = tuple(i.name for i in self.session.get_inputs())
        if names != spec.inputs:
            raise BackendError(f"{path} takes inputs {names}, expected {spec.inputs}")

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feeds = {name: np.ascontiguousarray(t.detach().cpu().numpy()) for name, t in zip(self.spec.inputs, inputs)}
        return tuple(torch.from_numpy(o) for o in self.session.run(None, feeds))


class OrtStateful:
    """A streaming part called like its torch module: `(x, state) -> (y, state)`.

    The state is the flat list of tensors the export threads through; None (the first
    call) is a zero state of the right sizes, which is what the torch modules start from.
    """

    def __init__(self, spec: ExportSpec, cache: Path, threads: int | None = None):
        self.part = OrtPart(spec, cached_export(spec, cache), threads)
        self.spec = spec
        self._zeros: dict[tuple, list[torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor, state: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list]:
        if state is None:
            sizes = {**self.spec.sizes("opt"), **{split_axis(p)[0]: x.shape[a] for a, p in self.spec.axes["x"].items()}}
            key = tuple(sorted(sizes.items()))
            if key not in self._zeros:
                self._zeros[key] = list(self.spec.make_inputs(sizes)[1:])
            state = self._zeros[key]
        y, *new = self.part(x.float(), *state)
        return y, new


class OrtDenoiser:
    """The Denoiser protocol over an exported denoiser whose inputs are (x, sigma, *cond keys)."""

    name = "ort"

    def __init__(self, spec: ExportSpec, cache: Path, threads: int | None = None):
        if spec.inputs[:2] != ("x", "sigma"):
            raise BackendError(f"{spec.name} is not a denoiser export (inputs {spec.inputs})")
        self.part = OrtPart(spec, cached_export(spec, cache), threads)
        self.cond_keys = spec.inputs[2:]

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
        missing = [k for k in self.cond_keys if k not in cond]
        if missing:
            raise BackendError(f"ort denoiser needs cond {missing}")
        inputs = pad_to_multiples(self.part.spec, (x.float(), sigma.float(), *(cond[k].float() for k in self.cond_keys)))
        (out,) = self.part(*inputs)
        out = out[tuple(slice(0, n) for n in x.shape)]
        if out.shape != x.shape:
            raise RuntimeError(f"denoiser returned shape {tuple(out.shape)} for input {tuple(x.shape)}")
        return out.to(x.dtype)
