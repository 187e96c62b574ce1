"""ONNX export of a model part (a denoiser or a decoder window) with dynamic axes.

An `ExportSpec` says what to export: a module called with positional tensors, the
names of its inputs and outputs, and for each dynamic axis the profile it must serve
(min / opt / max). Batch is always dynamic (1-16, the ring's padded batch); a length
or size axis has the profile its pipeline states. The spec also makes example inputs
of any size within the profiles, which the export traces at `opt` and the parity
checks use at other sizes.

Exports go through torch.export (`torch.onnx.export(dynamo=True)`), so the dynamic
axes are symbolic in the graph rather than frozen at the traced size.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from engine.denoiser import checked_prediction
from engine.files import atomic_path

from .errors import BackendError

EXPORT_VERSION = 1  # bump when the export code changes what a file holds
OPSET = 18


@dataclass(frozen=True)
class AxisProfile:
    """The range a dynamic axis must serve; TensorRT builds its optimisation profile from it.

    `multiple`: the axis only takes multiples of it (the DiT's patch size, say).
    """

    min: int
    opt: int
    max: int
    multiple: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(f"axis profile needs 1 <= min <= opt <= max, got {self}")
        if any(v % self.multiple for v in (self.min, self.opt, self.max)):
            raise ValueError(f"axis profile {self} is not in multiples of {self.multiple}")


BATCH = AxisProfile(1, 2, 16)


class PartKind(enum.Enum):
    """What a part is for (the benchmark's goal applies to denoisers)."""

    DENOISER = "denoiser"
    DECODER = "decoder"
    ENCODER = "encoder"


@dataclass(frozen=True)
class ExportSpec:
    """One exportable part of a model.

    module:  called as module(*inputs) -> tensor or tuple of tensors
    inputs / outputs: names in call order
    axes:    input name -> {axis index: profile name, or "name/k" for an axis k times smaller
                    (a streaming state after a stride)}
    profiles: profile name -> AxisProfile ("batch" is always one of them)
    make_inputs: sizes (profile name -> value) -> example inputs, in call order
    """

    name: str
    module: torch.nn.Module
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    axes: Mapping[str, Mapping[int, str]]
    profiles: Mapping[str, AxisProfile]
    make_inputs: Callable[[Mapping[str, int]], tuple[torch.Tensor, ...]]
    kind: PartKind = PartKind.DENOISER

    def sizes(self, which: str = "opt") -> dict[str, int]:
        return {name: getattr(p, which) for name, p in self.profiles.items()}

    def profile_json(self) -> dict:
        return {name: [p.min, p.opt, p.max] for name, p in sorted(self.profiles.items())}


def split_axis(key: str) -> tuple[str, int]:
    """"height" -> ("height", 1); "height/2" -> ("height", 2)."""
    name, _, div = key.partition("/")
    return name, int(div or 1)


def pad_to_multiples(spec: ExportSpec, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Zero-pad each axis whose profile takes only multiples (the DiT pads odd lengths the same way
    inside; the backends crop the output back to x's shape)."""
    out = []
    for name, t in zip(spec.inputs, inputs):
        pads = [0] * (2 * t.dim())
        for axis, key in spec.axes.get(name, {}).items():
            prof, div = split_axis(key)
            need = -t.shape[axis] % (spec.profiles[prof].multiple // div)
            pads[2 * (t.dim() - 1 - axis) + 1] = need
        out.append(torch.nn.functional.pad(t, pads) if any(pads) else t)
    return tuple(out)


class ExportedDenoiser:
    """The Denoiser protocol over an exported part whose inputs are (x, sigma, *cond keys).

    Subclasses set `self.part` (called with tensors, returning a tuple of tensors). Axes
    that take only multiples are zero-padded before the call and the output cropped back
    to x's shape, as the DiT pads odd lengths inside itself.
    """

    name = "exported"

    def __init__(self, spec: ExportSpec):
        if spec.inputs[:2] != ("x", "sigma"):
            raise BackendError(f"{spec.name} is not a denoiser export (inputs {spec.inputs})")
        self.spec = spec
        self.cond_keys = spec.inputs[2:]

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
        missing = [k for k in self.cond_keys if k not in cond]
        if missing:
            raise BackendError(f"{self.name} denoiser needs cond {missing}")
        (out,) = self.part(*pad_to_multiples(self.spec, (x, sigma, *(cond[k] for k in self.cond_keys))))
        out = out[tuple(slice(0, n) for n in x.shape)].to(device=x.device, dtype=x.dtype)
        return checked_prediction(out, x)


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 over the module's parameters and buffers (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_key(spec: ExportSpec) -> str:
    """What an exported file depends on: weights, spec, profiles, torch and export versions."""
    meta = {"name": spec.name, "inputs": spec.inputs, "outputs": spec.outputs,
            "axes": {k: {str(a): p for a, p in v.items()} for k, v in spec.axes.items()},
            "profiles": spec.profile_json(), "weights": weights_digest(spec.module),
            "torch": torch.__version__, "export": EXPORT_VERSION, "opset": OPSET}
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def _dynamic_shapes(spec: ExportSpec) -> dict[str, dict[int, torch.export.Dim]]:
    units = {name: torch.export.Dim(name if p.multiple == 1 else f"{name}_units",
                                    min=p.min // p.multiple, max=p.max // p.multiple)
             for name, p in spec.profiles.items()}

    def dim(key: str):
        prof, div = split_axis(key)
        step = spec.profiles[prof].multiple // div  # an axis k times smaller moves in steps of multiple / k
        return units[prof] if step == 1 else step * units[prof]

    return {inp: {axis: dim(key) for axis, key in spec.axes.get(inp, {}).items()} for inp in spec.inputs}


def export_onnx(spec: ExportSpec, path: Path) -> Path:
    """Export `spec` to `path` (written atomically: a failed export leaves no file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    example = spec.make_inputs(spec.sizes("opt"))
    try:
        module = spec.module.eval()
        # the exporter's notes (renamed axes, weight_norm's computed weights) are not the user's to act on
        with atomic_path(path, suffix=".onnx") as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, str(tmp), dynamo=True, input_names=list(spec.inputs),
                              output_names=list(spec.outputs), dynamic_shapes=_named(spec),
                              opset_version=OPSET, optimize=True, external_data=False, verbose=False)
    except Exception as err:
        raise BackendError(f"ONNX export of {spec.name} failed: {_summary(err)}") from err
    return path


def _summary(err: Exception) -> str:
    """The exporter's one-line cause (its message opens with generic advice and colour codes)."""
    text = str(err.__cause__ or err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("<class ")]
    return (lines[0] if lines else f"{type(err).__name__}: {text.splitlines()[0] if text else ''}")[:300]


def _named(spec: ExportSpec) -> tuple:
    """dynamic_shapes in the forward's argument structure: a `*rest` argument is one nested tuple."""
    import inspect

    shapes = [_dynamic_shapes(spec)[name] for name in spec.inputs]
    params = list(inspect.signature(spec.module.forward).parameters.values())
    if params and params[-1].kind is inspect.Parameter.VAR_POSITIONAL:
        fixed = len(params) - 1
        return (*shapes[:fixed], tuple(shapes[fixed:]))
    return tuple(shapes)


def cached_export(spec: ExportSpec, cache: Path) -> Path:
    """The ONNX file for `spec`, exported once per export key and reused after."""
    path = cache / "onnx" / f"{spec.name}-{export_key(spec)}.onnx"
    if not path.is_file():
        export_onnx(spec, path)
    return path


def default_cache() -> Path:
    """$DEMON_CACHE, else ~/.cache/demon: exports and engines are per machine, never committed."""
    return Path(os.environ.get("DEMON_CACHE") or Path.home() / ".cache" / "demon")


def example_randn(*shape: int) -> torch.Tensor:
    """Example inputs: normal noise seeded by the shape, so every export traces the same."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


class CondModule(torch.nn.Module):
    """(x, sigma, *cond tensors) positional, for export, around a `forward(x, sigma, cond dict)`."""

    def __init__(self, module: torch.nn.Module, keys: tuple[str, ...], call: Callable | None = None):
        super().__init__()
        self.module = module
        self.keys = keys
        self.call = call

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, *conds: torch.Tensor) -> torch.Tensor:
        cond = dict(zip(self.keys, conds))
        return self.call(self.module, x, sigma, cond) if self.call else self.module(x, sigma, cond)


class StatefulPart(torch.nn.Module):
    """A streaming module `forward(x, state) -> (y, state)` with its state as flat tensors.

    ONNX has no nested lists: the state's tensors become inputs `state_i` and outputs
    `next_state_i`. A zero state equals the module's own None state (its first call).
    """

    def __init__(self, module: torch.nn.Module, treespec):
        super().__init__()
        self.module = module
        self.treespec = treespec

    def forward(self, x: torch.Tensor, *leaves: torch.Tensor):
        y, state = self.module(x, _unflatten(list(leaves), self.treespec))
        return (y, *_flatten(state)[0])


def _flatten(tree) -> tuple[list[torch.Tensor], object]:
    """Nested lists/tuples of tensors and Nones -> (tensors, structure); Nones carry no tensor."""
    if tree is None:
        return [], None
    if isinstance(tree, torch.Tensor):
        return [tree], "tensor"
    leaves, parts = [], []
    for item in tree:
        sub, structure = _flatten(item)
        leaves += sub
        parts.append(structure)
    return leaves, (type(tree), parts)


def _unflatten(leaves: list[torch.Tensor], structure):
    if structure is None:
        return None
    if structure == "tensor":
        return leaves.pop(0)
    kind, parts = structure
    return kind(_unflatten(leaves, p) for p in parts)


def stateful_spec(name: str, module: torch.nn.Module, x_axes: Mapping[int, str],
                  profiles: Mapping[str, AxisProfile], make_x: Callable[[Mapping[str, int]], torch.Tensor],
                  kind: PartKind = PartKind.DECODER) -> ExportSpec:
    """An ExportSpec for a streaming module; which state axes follow which profile is found
    by running it at the `opt` sizes and again with each profile moved by one step."""
    def state_leaves(sizes):
        with torch.no_grad():
            _, state = module(make_x(sizes), None)
        return _flatten(state)

    opt = {n: p.opt for n, p in profiles.items()}
    leaves, treespec = state_leaves(opt)
    axes: dict[str, dict[int, str]] = {"x": dict(x_axes)}
    for prof, p in profiles.items():
        step = p.multiple if p.opt + p.multiple <= p.max else -p.multiple
        moved = state_leaves({**opt, prof: p.opt + step})[0]
        for i, (a, b) in enumerate(zip(leaves, moved)):
            for axis, (la, lb) in enumerate(zip(a.shape, b.shape)):
                if la != lb:
                    div = round(p.opt / la)  # a state after a stride is that many times smaller
                    if la * div != p.opt or abs(lb - la) * div != p.multiple:
                        raise ValueError(f"{name}: state {i} axis {axis} does not follow {prof} ({la} vs {p.opt})")
                    axes.setdefault(f"state_{i}", {})[axis] = prof if div == 1 else f"{prof}/{div}"
    n = len(leaves)

    def make_inputs(sizes):
        return (make_x(sizes), *(torch.zeros_like(t) for t in state_leaves(sizes)[0]))

    return ExportSpec(name=name, module=StatefulPart(module, treespec).eval(),
                      inputs=("x", *(f"state_{i}" for i in range(n))), outputs=("y", *(f"next_state_{i}" for i in range(n))),
                      axes=axes, profiles=profiles, make_inputs=make_inputs, kind=kind)
