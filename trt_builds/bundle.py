"""A pipeline's model bundle moved onto a compiled backend.

The swap sees a bundle only as a `ModelBundle`, so no pipeline is imported here: each
pipeline's bundle says what it exports, and this module puts those parts on the backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, Protocol, TypeVar

from .backends import Backend, make_denoiser
from .export import ExportSpec, cached_export, default_cache
from .ort import OrtPart, OrtStateful


class ModelBundle(Protocol):
    """A frozen dataclass of a pipeline's models (the swap is `dataclasses.replace`)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]
    denoiser: Any  # the engine's Denoiser, torch eager as the pipeline built it

    def export_spec(self) -> ExportSpec:
        """The denoiser's export."""

    def ort_parts(self) -> Mapping[str, ExportSpec]:
        """Field name -> export, for the other per-tick parts ONNX Runtime runs too."""


Bundle = TypeVar("Bundle", bound=ModelBundle)


def with_backend(models: Bundle, backend: Backend, **options) -> Bundle:
    """The same model bundle with its denoiser on `backend` (one line of error where it cannot run)."""
    if backend is Backend.TORCH:
        return models
    models = dataclasses.replace(models, denoiser=make_denoiser(backend, models.export_spec(), models.denoiser, **options))
    if backend is Backend.ORT:  # the codec/decoder parts too, so the whole per-tick work leaves torch eager
        cache, threads = options.get("cache") or default_cache(), options.get("threads")
        parts = {}
        for field, spec in models.ort_parts().items():
            if len(spec.outputs) > 1:  # a streaming part: (x, state) -> (y, state)
                parts[field] = OrtStateful(spec, cache, threads)
            else:
                part = OrtPart(spec, cached_export(spec, cache), threads)
                parts[field] = lambda z, part=part: part(z)[0]
        models = dataclasses.replace(models, **parts)
    return models
