"""ONNX Runtime on the CPU: a session per exported part, and the Denoiser protocol over it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .errors import BackendError
from .export import ExportedDenoiser, ExportSpec, cached_export, split_axis


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
        feeds = {name: np.ascontiguousarray(t.detach().float().cpu().numpy())  # the graphs take float32
                 for name, t in zip(self.spec.inputs, inputs)}
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
        y, *new = self.part(x, *state)
        return y, new


class OrtDenoiser(ExportedDenoiser):
    """The Denoiser protocol on ONNX Runtime."""

    name = "ort"

    def __init__(self, spec: ExportSpec, cache: Path, threads: int | None = None):
        super().__init__(spec)
        self.part = OrtPart(spec, cached_export(spec, cache), threads)
