"""Command-line flags generated from the parameter registry, and one-line errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Iterable, NoReturn

from engine import InputError, ParamType, Registry


class UsageError(Exception):
    """A bad command line: reported as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print the whole usage
        raise UsageError(message)


def add_param_flags(parser: argparse.ArgumentParser, registry: Registry, names: Iterable[str]) -> None:
    """`--<name>` for each registry parameter (underscores become dashes)."""
    for name in names:
        p = registry[name]
        flag = "--" + name.replace("_", "-")
        rng = f" [{p.minimum:g}..{p.maximum:g}]" if p.minimum is not None and p.maximum is not None else ""
        help_text = f"{p.doc} (default {p.default}{rng}{' ' + p.unit if p.unit else ''}; {p.propagation.value})"
        if p.type is ParamType.CHOICE:
            parser.add_argument(flag, dest=name, choices=p.choices, default=None, help=help_text)
        elif p.type is ParamType.CURVE:
            parser.add_argument(flag, dest=name, type=_float_list, default=None, help=help_text)
        else:
            kind = {ParamType.INT: int, ParamType.FLOAT: float, ParamType.TEXT: str}.get(p.type, str)
            parser.add_argument(flag, dest=name, type=kind, default=None, help=help_text)


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """--backend (and TensorRT's --precision): where the denoiser runs; no silent fallback."""
    from trt_builds.backends import BACKEND_NAMES
    from trt_builds.cache import PRECISIONS

    group = parser.add_argument_group("backend")
    group.add_argument("--backend", choices=BACKEND_NAMES, default="torch",
                       help="denoiser backend: torch eager (default), torch-compile, ort (ONNX Runtime, CPU) "
                            "or tensorrt (NVIDIA GPU, optional extra); exports and engines are cached")
    group.add_argument("--precision", choices=PRECISIONS, default="fp16",
                       help="TensorRT engine precision (default fp16)")


def on_backend(models, args: argparse.Namespace):
    """The loaded models with their denoiser on the chosen backend."""
    from trt_builds.backends import Backend
    from trt_builds.bundle import with_backend

    backend = Backend.parse(args.backend)
    if backend is Backend.TENSORRT:
        return with_backend(models, backend, precision=args.precision)
    return with_backend(models, backend)


def param_values(args: argparse.Namespace, registry: Registry, names: Iterable[str]) -> dict[str, Any]:
    """The flags the user gave, validated by the registry (InputError names the flag)."""
    out = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            try:
                out[name] = registry.coerce(name, value)
            except InputError as err:
                raise InputError("--" + name.replace("_", "-"), err.reason) from None
    return out


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def fail(message: str) -> int:
    print(f"demon: error: {message}", file=sys.stderr)
    return 2
