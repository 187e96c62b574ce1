"""ONNX Runtime against torch eager, for every house model part, side by side in one run.

For each exported part (demon/catalog.py: the denoisers and the decoder windows)
at its profile's `opt` sizes and a ring batch, the same inputs run through torch eager
and through the ORT session, interleaved (eager, ort, eager, ort...), so both see the
same machine state; the median of each is compared. Both use this process's cores.

Prints JSON lines: ort_speedup (eager median / ort median, goal >= 1.5 for denoisers)
and max_abs_diff (ort against eager on those inputs), per part; `--compile` adds
torch.compile (dynamic shapes) beside them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import emit

from demon.catalog import house_specs
from pipelines.errors import ModelFolderError
from trt_builds.export import PartKind, cached_export, default_cache
from trt_builds.ort import OrtPart, cpu_threads


def alternate(a, b, inputs, repeats: int) -> tuple[float, float]:
    """Median seconds of `a` and of `b`, called one after the other `repeats` times, so
    drift in the machine's state hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in zip((a, b), times):
            t0 = time.perf_counter()
            fn(*inputs)
            out.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipelines", default="music,video-sr,voice", help="comma-separated: music, video-sr, voice")
    ap.add_argument("--batch", type=int, default=2, help="ring batch (rows per denoiser call)")
    ap.add_argument("--repeats", type=int, default=10, help="timed calls per backend (after one warm-up)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    args = ap.parse_args()
    threads = cpu_threads()
    torch.set_num_threads(threads)
    cache = default_cache()
    for pipeline in args.pipelines.split(","):
        try:
            specs = list(house_specs((pipeline,)))
        except ModelFolderError as err:
            emit("backends", "skipped", 0, "", pipeline=pipeline, reason=str(err))
            continue
        for spec in specs:
            sizes = {**spec.sizes("opt"), "batch": args.batch}
            inputs = spec.make_inputs(sizes)
            part = OrtPart(spec, cached_export(spec, cache), threads)

            def eager(*xs):
                with torch.inference_mode():
                    return spec.module(*xs)

            ref, got = eager(*inputs), part(*inputs)
            ref = ref if isinstance(ref, tuple) else (ref,)
            diff = max(float((r - g).abs().max()) if r.numel() else 0.0 for r, g in zip(ref, got))
            me, mo = alternate(eager, part, inputs, args.repeats)
            shape = {k: v for k, v in sizes.items()}
            emit("backends", "ort_speedup", me / mo, "x", baseline=me * 1e3, ratio=me / mo, part=spec.name,
                 kind=spec.kind.value, sizes=shape, eager_ms=round(me * 1e3, 2), ort_ms=round(mo * 1e3, 2),
                 threads=threads, goal=1.5 if spec.kind is PartKind.DENOISER else None)
            emit("backends", "max_abs_diff", diff, "abs", part=spec.name, sizes=shape)
            if args.compile:
                compiled = torch.compile(spec.module, dynamic=True)

                def comp(*xs):
                    with torch.inference_mode():
                        return compiled(*xs)

                comp(*inputs)
                me, mc = alternate(eager, comp, inputs, args.repeats)
                emit("backends", "compile_speedup", me / mc, "x", baseline=me * 1e3, ratio=me / mc,
                     part=spec.name, sizes=shape, eager_ms=round(me * 1e3, 2), compiled_ms=round(mc * 1e3, 2))


if __name__ == "__main__":
    main()
