"""Video super-resolution corpus, made here without network access.

    python -m pipelines.video_sr.data --out data/video_sr --clips 600

High-resolution clips come from three kinds of source:
- pan, zoom and rotation over natural pictures (pictures.py: Debian's wallpaper
  photographs and illustrations, and the sample photos inside scikit-image and
  scikit-learn), each first scaled down by a random factor (a large picture's own
  pixels are often soft; scaled down, it is a sharp frame at one of many zooms), then
  each frame a window of one to two frame widths of it, rendered with antialiasing (a
  camera's frames: never a magnified picture, never aliased);
- FFmpeg's procedural video (PyAV's lavfi input): mandelbrot zooms, life, cellauto,
  testsrc2;
- the same motion over "dead leaves" pictures, a new one per clip: occluding shaded
  discs and boxes whose sizes follow a power law, some striped. Their edge and scale
  statistics are those of natural images (a classic synthetic prior for restoration
  networks).
Each clip is degraded the way real low-resolution video is: Gaussian blur, bicubic
downscale (antialiased), sensor noise, then JPEG or H.264 compression. Held-out sources
(whole pictures, never crops of a trained one, and mandelbrot) never appear in training.
`--pictures wheels` keeps to the pictures inside the Python packages (no wallpaper
packages needed: the tests' corpus).

Clips are stored as safetensors, uint8 HR (T, H, W, 3) and one degraded LR clip per
scale, "lr_x2" (T, H/2, W/2, 3) and "lr_x4" (T, H/4, W/4, 3), with a metadata.jsonl
line each. Both LR clips share the clip's degradation settings but draw their own noise.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import pictures

PROCEDURAL = ("mandelbrot", "life", "cellauto", "testsrc2")
SYNTHETIC = ("deadleaves",)
HELD_OUT = tuple(sorted(pictures.HELD_OUT_PICTURES)) + ("mandelbrot",)  # never trained on
WHEELS = ("skimage", "sklearn")  # picture origins inside the Python packages


def sources(which: str = "all") -> tuple[str, ...]:
    """The order clips cycle through sources: each picture (`wheels`: only those inside the
    Python packages), each procedural kind, and dead-leaves pictures for one clip in five."""
    names = tuple(p.name for p in pictures.PICTURES if which == "all" or p.origin in WHEELS)
    return names + PROCEDURAL + SYNTHETIC * max(1, (len(names) + len(PROCEDURAL)) // 4)


def source_kind(source: str) -> str:
    """photo, illustration, procedural or synthetic: held-out figures are reported per kind."""
    if source in PROCEDURAL:
        return "procedural"
    if source in SYNTHETIC:
        return "synthetic"
    return pictures.by_name(source).kind.value


SCALES = (2, 4)  # HR / LR, each side


def lr_key(scale: int) -> str:
    """The corpus file's entry for the LR clip at `scale`."""
    return f"lr_x{scale}"


@dataclass(frozen=True)
class ClipSpec:
    source: str  # a photo name or a procedural kind
    seed: int
    frames: int
    size: int  # HR clips are size x size
    blur: float
    noise: float  # standard deviation, in 0..255 units
    codec: str  # "jpeg" | "h264"
    quality: int  # JPEG quality (Pillow) or H.264 CRF

    @property
    def split(self) -> str:
        return "test" if self.source in HELD_OUT else "train"


# ---- sources ------------------------------------------------------------------------------


def scaled_picture(name: str, rng: np.random.Generator, shortest: int) -> np.ndarray:
    """The picture scaled down (antialiased) so its shorter side is a random length between
    `shortest` and 1080 pixels; never scaled up."""
    image = pictures.load(name)
    short = min(image.shape[:2])
    target = min(short, int(rng.uniform(min(shortest, short), max(min(1080, short), shortest))))
    if target >= short:
        return image
    x = torch.tensor(image).permute(2, 0, 1)[None].float()
    size = (round(image.shape[0] * target / short), round(image.shape[1] * target / short))
    y = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
    return np.ascontiguousarray(y[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy())


def photo_motion(image: np.ndarray, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth pan / zoom / rotation over `image`, size x size. Like a camera's frames, the
    result is never a magnification: the window spans 1 to 2 frame widths of source pixels
    (less only where the image is smaller), and it is rendered at twice the size then
    downscaled with an antialiasing filter, so HR frames hold detail up to their Nyquist
    limit and no aliasing. (A magnified window is a bicubic upscale, which bicubic SR
    already matches; an aliased one holds detail no camera records.)"""
    h, w = image.shape[:2]
    src = torch.tensor(image).permute(2, 0, 1)[None].float()  # a copy: loaded pictures are shared, read-only
    t = np.linspace(0.0, 1.0, frames)
    window = size * math.exp(rng.uniform(0.05, math.log(2.0)))  # source pixels across the frame
    zoom = min(window / min(h, w), 0.9) * np.exp(rng.uniform(-0.05, 0.2) * t)  # window side / shorter side
    angle = rng.uniform(-0.2, 0.2) + rng.uniform(-0.25, 0.25) * t
    cx = rng.uniform(-0.3, 0.3) + rng.uniform(-0.25, 0.25) * t
    cy = rng.uniform(-0.3, 0.3) + rng.uniform(-0.25, 0.25) * t
    aspect = w / h
    theta = torch.zeros(frames, 2, 3)
    for i in range(frames):
        c, s = math.cos(angle[i]), math.sin(angle[i])
        sx, sy = zoom[i] / max(aspect, 1.0), zoom[i] * min(aspect, 1.0)
        theta[i] = torch.tensor([[c * sx, -s * sy, cx[i]], [s * sx, c * sy, cy[i]]])
    grid = F.affine_grid(theta, (frames, 3, 2 * size, 2 * size), align_corners=False)
    big = F.grid_sample(src.expand(frames, -1, -1, -1), grid, mode="bicubic", padding_mode="reflection",
                        align_corners=False)
    out = F.interpolate(big, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return np.ascontiguousarray(out.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy())


def dead_leaves(size: int, rng: np.random.Generator, shapes: int = 6000) -> np.ndarray:
    """(size, size, 3) uint8: shapes dropped one over another, radii ~ r^-3 (scale invariant),
    each a colour near grey (channels correlate, as in photos) with a linear shading and,
    one in four, stripes; over a shaded background."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = (rng.uniform(40, 200) + rng.uniform(-40, 40) * yy + rng.uniform(-40, 40) * xx)[..., None].repeat(3, -1)
    r_min, r_max = 1.5, size / 4
    u = rng.random(shapes)
    radii = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5  # inverse CDF of p(r) ~ r^-3
    for r in radii:  # back to front: each shape covers the ones before it
        cy, cx = rng.uniform(-r, size + r, 2)
        y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        py, px = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = (py - cy) / r, (px - cx) / r
        if rng.random() < 0.7:
            mask = dy**2 + dx**2 <= 1
        else:
            mask = (np.abs(dy) <= 1) & (np.abs(dx) <= rng.uniform(0.3, 1))
        color = rng.uniform(10, 245) + rng.normal(0, 25, 3)
        value = color * (1 + rng.uniform(-0.3, 0.3) * dy + rng.uniform(-0.3, 0.3) * dx)[..., None]
        if rng.random() < 0.25:
            angle, period = rng.uniform(0, np.pi), rng.uniform(2.5, 12)
            stripes = np.sin((px * np.cos(angle) + py * np.sin(angle)) * 2 * np.pi / period)
            value = value * (0.75 + 0.25 * stripes[..., None])
        img[y0:y1, x0:x1][mask] = value[mask]
    return np.clip(img, 0, 255).round().astype(np.uint8)


def procedural(kind: str, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """FFmpeg's generated video through PyAV's lavfi input, cropped to size x size."""
    import av

    seed = int(rng.integers(0, 2**31 - 1))
    big = size * 2  # render larger and crop a random square so clips differ
    graphs = {
        "mandelbrot": f"mandelbrot=size={big}x{big}:rate=25:start_scale={rng.uniform(0.5, 3.0):.3f}"
                      f":end_scale={rng.uniform(1e-3, 0.1):.4f}:outer=normalized_iteration_count",
        "life": f"life=size={big // 2}x{big // 2}:rate=25:seed={seed}:ratio={rng.uniform(0.05, 0.3):.2f}"
                f":mold={int(rng.integers(0, 30))}:life_color=#{int(rng.integers(0, 2**24)):06x}"
                f":death_color=#{int(rng.integers(0, 2**24)):06x},scale={big}x{big}:flags=neighbor",
        "cellauto": f"cellauto=size={big}x{big}:rate=25:rule={int(rng.choice([18, 30, 90, 110, 150]))}:seed={seed}",
        "testsrc2": f"testsrc2=size={big}x{big}:rate=25",
    }
    container = av.open(graphs[kind], format="lavfi")
    skip = int(rng.integers(0, 50))
    out = []
    try:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= skip:
                out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    finally:
        container.close()
    clip = np.stack(out)
    y, x = (int(v) for v in rng.integers(0, big - size + 1, 2))
    return np.ascontiguousarray(clip[:, y : y + size, x : x + size])


# ---- degradation ----------------------------------------------------------------------------


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(T, 3, H, W) float, separable Gaussian, reflect-padded."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype) / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscale of (T, H, W, 3) uint8."""
    x = torch.from_numpy(hr).permute(0, 3, 1, 2).float()
    h, w = hr.shape[1] // scale, hr.shape[2] // scale
    y = F.interpolate(x, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    return np.ascontiguousarray(y.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy())


def compress(clip: np.ndarray, codec: str, quality: int) -> np.ndarray:
    """JPEG each frame (libjpeg through Pillow, `quality` 1..95) or H.264 the whole clip
    (yuv420p through PyAV, `quality` = CRF); returns the decoded frames."""
    if codec == "jpeg":
        from PIL import Image

        out = []
        for frame in clip:
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
            out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
        return np.stack(out)
    import av

    buf = io.BytesIO()
    out = av.open(buf, "w", format="mp4")
    stream = out.add_stream("libx264", rate=25)
    stream.width, stream.height = clip.shape[2], clip.shape[1]
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": str(quality), "preset": "veryfast"}
    for frame in clip:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    buf.seek(0)
    with av.open(buf) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames)


def degrade(hr: np.ndarray, spec: ClipSpec, scale: int, rng: np.random.Generator) -> np.ndarray:
    x = torch.from_numpy(hr).permute(0, 3, 1, 2).float()
    x = gaussian_blur(x, spec.blur * scale / 4)  # the blur is the optics' at 4x, in LR pixels
    blurred = x.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
    lr = downscale(blurred, scale).astype(np.float32)
    lr += rng.normal(0.0, spec.noise, lr.shape).astype(np.float32)
    lr = np.clip(np.round(lr), 0, 255).astype(np.uint8)
    return compress(lr, spec.codec, spec.quality)


# ---- the corpus -----------------------------------------------------------------------------


def clip_spec(index: int, seed: int, frames: int, size: int, which: str = "all") -> ClipSpec:
    rng = np.random.default_rng([seed, index])
    codec = "h264" if rng.random() < 0.5 else "jpeg"
    quality = int(rng.integers(20, 33)) if codec == "h264" else int(rng.integers(25, 80))
    cycle = sources(which)
    return ClipSpec(source=str(cycle[index % len(cycle)]), seed=int(rng.integers(0, 2**31 - 1)), frames=frames,
                    size=size, blur=float(rng.uniform(0.0, 1.2)), noise=float(rng.uniform(0.0, 4.0)),
                    codec=codec, quality=quality)


def make_clip(spec: ClipSpec, scales: tuple[int, ...] = SCALES) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The HR clip and its degraded LR copy at each scale."""
    rng = np.random.default_rng(spec.seed)
    if spec.source in PROCEDURAL:
        hr = procedural(spec.source, spec.frames, spec.size, rng)
    elif spec.source in SYNTHETIC:
        hr = photo_motion(dead_leaves(3 * spec.size, rng), spec.frames, spec.size, rng)
    else:
        hr = photo_motion(scaled_picture(spec.source, rng, 3 * spec.size), spec.frames, spec.size, rng)
    return hr, {s: degrade(hr, spec, s, rng) for s in scales}


def main(argv: list[str] | None = None) -> int:
    from safetensors.numpy import save_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/video_sr"))
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=128, help="HR clips are size x size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pictures", choices=("all", "wheels"), default="all",
                    help="all: the wallpaper packages' pictures too (scripts/setup.sh --video-sr-corpus installs "
                         "them); wheels: only those inside scikit-image and scikit-learn")
    args = ap.parse_args(argv)
    if args.clips < 1 or args.frames < 2 or args.size % (4 * max(SCALES)):
        ap.error(f"need clips >= 1, frames >= 2 and a size divisible by {4 * max(SCALES)}")
    if args.pictures == "all":
        try:
            pictures.require_pictures()
        except pictures.MissingPictures as err:
            ap.error(str(err))
    for split in ("train", "test"):
        (args.out / split).mkdir(parents=True, exist_ok=True)
    with open(args.out / "metadata.jsonl", "w") as meta:
        for i in range(args.clips):
            spec = clip_spec(i, args.seed, args.frames, args.size, args.pictures)
            hr, lrs = make_clip(spec)
            name = f"{spec.split}/{i:05d}.safetensors"
            # safetensors writes the raw buffer: views (permuted tensors) must be made contiguous
            arrays = {"hr": hr} | {lr_key(s): lr for s, lr in lrs.items()}
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(args.out / name))
            meta.write(json.dumps({"file": name, "split": spec.split, "kind": source_kind(spec.source),
                                   **asdict(spec)}) + "\n")
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{args.clips} clips", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
