"""TensorRT builder and runtime (the optional extra `tensorrt`; needs an NVIDIA GPU).

Build: the cached ONNX export of a part, parsed into a network with one optimisation
profile (batch 1-16 and the part's length/size profile), fp16 or bf16, refit enabled,
kept in the engine cache under its full key. Run: one execution context, static device
buffers and one CUDA graph per input shape (per ring batch size), replayed each tick.
Refit swaps weights (a LoRA merged, another checkpoint of the same graph) without a
rebuild; the graphs are recaptured after it.

Nothing here falls back: no GPU, no TensorRT, a parse or build failure are each a
BackendError naming the reason.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable, Mapping

import torch

from .cache import EngineCache, EngineKey
from .errors import BackendError
from .export import ExportedDenoiser, ExportSpec, cached_export, export_onnx, file_digest


def require_gpu(what: str = "--backend tensorrt"):
    """The tensorrt module, or one clear line saying what is missing."""
    if not torch.cuda.is_available():
        raise BackendError(f"{what} needs an NVIDIA GPU with CUDA; none is visible here "
                           "(torch.cuda.is_available() is False)")
    try:
        import tensorrt as trt
    except ImportError as err:
        raise BackendError(f"{what} needs TensorRT: pip install 'demon[tensorrt]' ({err})") from None
    return trt


def gpu_sm() -> str:
    major, minor = torch.cuda.get_device_capability()
    return f"{major}.{minor}"


class _Progress:
    """Prints the builder's phases as it goes (a build takes minutes)."""

    def __init__(self, trt, write: Callable[[str], None]):
        base = trt.IProgressMonitor

        class Monitor(base):
            def __init__(self):
                base.__init__(self)

            def phase_start(self, phase_name, parent_phase, num_steps):
                write(f"{'  ' if parent_phase else ''}{phase_name} ({num_steps} steps)")

            def step_complete(self, phase_name, step):
                return True  # never cancel

            def phase_finish(self, phase_name):
                pass

        self.monitor = Monitor()


def _shapes(spec: ExportSpec, sizes: Mapping[str, int]) -> list[tuple[int, ...]]:
    """Every input's shape at `sizes`, from the spec's own example maker (one call: for a
    streaming part it runs the module to learn its state's shapes)."""
    return [tuple(t.shape) for t in spec.make_inputs(sizes)]


def build_engine(spec: ExportSpec, onnx_path: Path, precision: str,
                 write: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> bytes:
    trt = require_gpu()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        config.set_flag(trt.BuilderFlag.BF16)
    config.set_flag(trt.BuilderFlag.REFIT)
    profile = builder.create_optimization_profile()
    lo, opt, hi = (_shapes(spec, spec.sizes(which)) for which in ("min", "opt", "max"))
    for i, name in enumerate(spec.inputs):
        profile.set_shape(name, lo[i], opt[i], hi[i])
    config.add_optimization_profile(profile)
    progress = _Progress(trt, write)
    config.progress_monitor = progress.monitor
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BackendError(f"TensorRT could not build an engine for {spec.name} (see its log above)")
    return bytes(plan)


def engine_key(spec: ExportSpec, onnx_path: Path, precision: str) -> EngineKey:
    trt = require_gpu()
    return EngineKey.make(spec.name, file_digest(onnx_path), spec.profile_json(), precision, trt.__version__, gpu_sm())


def cached_engine(spec: ExportSpec, cache: Path, precision: str,
                  write: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> tuple[Path, EngineKey, bool]:
    """(engine file, its key, whether it was built now) — built only when no valid entry exists."""
    onnx_path = cached_export(spec, cache)
    key = engine_key(spec, onnx_path, precision)
    store = EngineCache(cache, write)
    found = store.lookup(key)
    if found is not None:
        return found, key, False
    write(f"building TensorRT engine {spec.name} ({precision}, profile {spec.profile_json()})")
    plan = build_engine(spec, onnx_path, precision, write)
    return store.store(key, plan, {"onnx": onnx_path.name, "inputs": list(spec.inputs)}), key, True


class TrtPart:
    """A deserialised engine with static buffers and one CUDA graph per input shape."""

    def __init__(self, spec: ExportSpec, cache: Path, precision: str = "fp16"):
        trt = require_gpu()
        self.trt, self.spec, self.cache = trt, spec, cache
        self.path, self.key, _ = cached_engine(spec, cache, precision)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT could not load {self.path}")
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], list[torch.Tensor]]] = {}
        self.max_batch = spec.profiles["batch"].max

    def _dtype(self, name: str) -> torch.dtype:
        return {self.trt.float32: torch.float32, self.trt.float16: torch.float16,
                self.trt.bfloat16: torch.bfloat16, self.trt.int64: torch.int64,
                self.trt.int32: torch.int32}[self.engine.get_tensor_dtype(name)]

    def _capture(self, shapes: tuple[tuple[int, ...], ...]):
        ins = [torch.empty(s, dtype=self._dtype(n), device="cuda") for n, s in zip(self.spec.inputs, shapes)]
        for name, t in zip(self.spec.inputs, ins):
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        outs = []
        for name in self.spec.outputs:
            t = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self._dtype(name), device="cuda")
            self.context.set_tensor_address(name, t.data_ptr())
            outs.append(t)
        with torch.cuda.stream(self.stream):
            self.context.execute_async_v3(self.stream.cuda_stream)  # warm-up: lazy allocations happen outside capture
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self.context.execute_async_v3(self.stream.cuda_stream)
        return graph, ins, outs

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if inputs[0].shape[0] > self.max_batch:
            raise BackendError(f"batch {inputs[0].shape[0]} exceeds the engine's profile (max {self.max_batch})")
        shapes = tuple(tuple(t.shape) for t in inputs)
        if shapes not in self.graphs:
            self.graphs[shapes] = self._capture(shapes)
        graph, ins, outs = self.graphs[shapes]
        for buf, t in zip(ins, inputs):
            buf.copy_(t, non_blocking=True)
        graph.replay()
        return tuple(o.clone() for o in outs)

    def refit(self, module: torch.nn.Module) -> None:
        """Swap in `module`'s weights (same graph): export them, refit the engine, recapture."""
        spec = dataclasses.replace(self.spec, module=module)
        onnx_path = export_onnx(spec, self.cache / "onnx" / f"{spec.name}-refit.onnx")
        refitter = self.trt.Refitter(self.engine, self.logger)
        parser = self.trt.OnnxParserRefitter(refitter, self.logger)
        if not parser.refit_from_file(str(onnx_path)) or not refitter.refit_cuda_engine():
            raise BackendError(f"TensorRT refit of {spec.name} failed (was the engine built from the same graph?)")
        self.graphs.clear()


class TrtDenoiser(ExportedDenoiser):
    """The Denoiser protocol on a TensorRT engine; tensors stay on the GPU."""

    name = "tensorrt"

    def __init__(self, spec: ExportSpec, cache: Path, precision: str = "fp16"):
        super().__init__(spec)
        self.part = TrtPart(spec, cache, precision)
