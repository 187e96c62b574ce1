"""Streaming super-resolution: LR frames in, HR frames out, in order, one frame of work each.

    LR frame --blended with the previous LR frame in, carried along the motion (`steady`)--> LR'
    LR' --LatentUpsampler (cached state)--> z_up
    z_up --a Request in the ring: noised to `strength`, `steps` refiner steps--> z
    z --CausalDecoder (cached state)--> detail; HR frame = bicubic(LR') + `detail` x detail

The latents describe what bicubic upsampling misses (the residual), so the cascade
starts from the baseline and only has to add detail and remove degradation.

Each frame is one slot of the ring. With one step (the real-time default) a frame
goes in and out in the same tick; with k steps the ring holds k consecutive frames
at different steps and a frame comes out k - 1 frames after it went in (the depth
follows the step count, so admission never queues). No stage looks ahead: every
temporal kernel is causal and the steady blend looks only at the previous frame in
(motion.py), so `lookahead_frames` is 0. Memory is the models' cached state, the ring
and one LR frame, whatever the length of the stream.

Where the time goes at 1080p out decided the shape: the networks run on the latent grid
(HR / 4) in channels-last layout, the steady blend and its motion search run on the LR
frame (1 / scale^2 of the output's pixels), and the output is composed in 8 bits: the
upscale of the uint8 LR frame (torch's uint8 bicubic, 20x faster than in floats at 1080p),
plus the decoded detail rounded to integers.

Parameters live in a StateStore over VIDEO_SR_PARAMS (the core registry plus detail
and steady): steps, strength, seed and steady are request-class (frames pushed after a
change use it), velocity_scale is step-class, detail (how much of the decoded detail goes
onto bicubic) is output-class (the next frame out uses it; nothing in flight is touched).
Every frame uses the same seed, so the refiner's noise is the same pattern from frame to
frame and does not flicker.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine import InputError, Ring, StateStore, request_from_state

from ..ring_streams import InOrder, depth_follows_steps
from .checkpoint import VideoSRModels
from ..stage_clock import StageClock
from .models import SRConfig, lookahead_frames
from .motion import steady_input, steady_input_clip
from .quality import bicubic_u8
from .params import VIDEO_SR_PARAMS

LOOKAHEAD_FRAMES = lookahead_frames(SRConfig())  # the layers' figure; the steady blend looks back only
MAX_SIDE = 8192  # LR frames beyond this are refused, not allocated


def decoded_detail(upsampler, refiner, decoder, lr: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """What the cascade adds onto bicubic for a whole clip (B, 3, T, h, w), before `detail`
    scales it: upsample, one refiner step from `sigma` with the ring's noise (one draw of
    the request's seed, the same for every frame), decode."""
    with torch.no_grad():
        z_up, _ = upsampler(lr)
        b, c, t, h, w = z_up.shape
        flat = z_up.transpose(1, 2).reshape(b * t, c, h, w)
        noise = torch.randn((1, c, h, w), generator=torch.Generator().manual_seed(seed))
        x = (1 - sigma) * flat + sigma * noise
        v = refiner(x, torch.full((b * t,), sigma), {"z_up": flat})
        z = (x - sigma * v).reshape(b, t, c, h, w).transpose(1, 2)
        return decoder(z)[0]


def compose(base: torch.Tensor, added: torch.Tensor, detail: float) -> torch.Tensor:
    """The output in 8 bits: the uint8 upscale (N, 3, H, W) plus `detail` x the decoded detail
    (N, 1 or 3, H, W; one channel goes onto R, G and B alike), rounded to integers."""
    step = (added * (255.0 * detail)).round_().to(torch.int16)
    out = base.to(torch.int16)  # in place from here: the upscale's layout (channels-last) is kept
    return out.add_(step).clamp_(0, 255).to(torch.uint8)


def whole_clip_reference(upsampler, refiner, decoder, lr: torch.Tensor, sigma: float, seed: int = 0,
                         detail: float = 1.0, steady: float = 0.0) -> torch.Tensor:
    """The offline path, a whole clip (B, 3, T, h, w) of 8-bit values at once: the steady blend
    over the LR frames, the decoded detail of the result, scaled by `detail`, onto its bicubic
    upscale, in [0, 1]. Streaming with one step gives the same frames."""
    with torch.no_grad():
        lr = steady_input_clip(lr, steady, upsampler.scale)
        return compose_clip(lr, decoded_detail(upsampler, refiner, decoder, lr, sigma, seed), detail)


def compose_clip(lr: torch.Tensor, added: torch.Tensor, detail: float) -> torch.Tensor:
    """`compose` over a whole clip: LR (B, 3, T, h, w) of 8-bit values in [0, 1], its decoded
    detail (B, 1 or 3, T, H, W) -> the output clip in [0, 1]."""
    b, c, t, h, w = lr.shape
    frames = (lr.transpose(1, 2).reshape(b * t, c, h, w) * 255).round_().to(torch.uint8)
    added = added.transpose(1, 2).reshape(b * t, -1, *added.shape[-2:])
    out = compose(bicubic_u8(frames, added.shape[-1] // w), added, detail).float().div_(255)
    return out.reshape(b, t, c, *out.shape[-2:]).transpose(1, 2)


def default_state(models: VideoSRModels) -> StateStore:
    """The video SR registry, from the start sigma, detail and steady the model's card measured best."""
    return StateStore(VIDEO_SR_PARAMS, {"strength": models.sigma, "detail": models.detail, "steady": models.steady})


class StreamingSR:
    def __init__(self, models: VideoSRModels, store: StateStore | None = None, clock: StageClock | None = None):
        self.models = models
        self.clock = clock if clock is not None else StageClock()  # milliseconds per stage, for the benchmark
        self.scale = models.scale
        self.store = store if store is not None else default_state(models)
        self.denoiser = models.denoiser
        self.ring: Ring | None = None
        self.size: tuple[int, int] | None = None  # LR (height, width) of this stream
        self._up_state = None
        self._dec_state = None
        # frames in flight: each LR frame (its bicubic base) -> the finished latent and its versions
        self._order: InOrder[torch.Tensor, tuple] = InOrder()
        self._last: torch.Tensor | None = None  # the previous LR frame in, steadied (float), for the steady blend
        # (request-class, step-class) StepState versions the newest output frame carries, for onsets
        self.carried: tuple[int, int] | None = None

    @property
    def frames_in(self) -> int:
        return self._order.entered

    @property
    def frames_out(self) -> int:
        return self._order.released

    # LR frames are padded (replicate) to what the upsampler's stride needs; outputs are cropped back.
    @property
    def _multiple(self) -> int:
        return 4 // self.scale

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        """One LR frame (H, W, 3) uint8 -> the HR frames (H*s, W*s, 3) uint8 now finished, in order."""
        with self.clock("convert"):
            lr = self._check(frame)
        if self.ring is None:
            self._start(frame.shape[:2], lr.shape[-2:])
        depth_follows_steps(self.store)
        state = self.store.snapshot
        if self._last is not None and state["steady"] > 0:
            with torch.inference_mode(), self.clock("steady"):
                lr = steady_input(self._last, lr[:, :, 0], state["steady"], self.scale)[:, :, None]
        self._last = lr[:, :, 0]  # kept while steady is 0 too, so turning it up blends with the true last frame
        with self.clock("convert"):
            lr_u8 = (lr[:, :, 0] * 255).round_().to(torch.uint8)  # the upscale's input (exact: 8-bit values)
        with torch.inference_mode(), self.clock("upsampler"):
            z_up, self._up_state = self.models.upsampler(lr, self._up_state)
        z_up = z_up[0, :, 0].contiguous()  # (C, h, w), owned by the request
        request = request_from_state(state, cond={"z_up": z_up}, source=z_up)
        self.ring.submit(request)
        self._order.awaits(self._order.enter(lr_u8), request.id)  # for its upscale when it comes out
        with self.clock("refiner"):
            done = self.ring.tick()
        return self._collect(done)

    def flush(self) -> list[np.ndarray]:
        """The frames still in flight, at the end of a stream."""
        if self.ring is None:
            return []
        return self._collect(self.ring.run_until_idle())

    # ---- internals ---------------------------------------------------------------------

    def _check(self, frame: np.ndarray) -> torch.Tensor:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError("frame", f"expected an (H, W, 3) uint8 RGB array, got "
                             f"{getattr(frame, 'shape', type(frame).__name__)} {getattr(frame, 'dtype', '')}")
        h, w = frame.shape[:2]
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise InputError("frame", f"size {w}x{h} is outside 1..{MAX_SIDE} per side")
        if self.size is not None and (h, w) != self.size:
            raise InputError("frame", f"size changed mid-stream from {self.size[1]}x{self.size[0]} to {w}x{h}")
        # (1, 3, 1, H, W), channels-last as the frame lies in memory (the networks' layout)
        x = torch.from_numpy(frame).permute(2, 0, 1).float().div_(255.0)[None, :, None]
        m = self._multiple
        pad_h, pad_w = -h % m, -w % m
        if pad_h or pad_w:
            x = F.pad(x[:, :, 0], (0, pad_w, 0, pad_h), mode="replicate")[:, :, None]
        return x

    def _start(self, size: tuple[int, int], padded: tuple[int, int]) -> None:
        self.size = tuple(size)
        h, w = (n * self.scale // 4 for n in padded)  # the latent grid is HR / 4
        c = self.models.cfg.latent_channels
        null = {"z_up": torch.zeros(c, h, w)}
        self.ring = Ring(self.denoiser, (c, h, w), store=self.store, null_cond=null)

    def _collect(self, completions) -> list[np.ndarray]:
        last = self.ring.trace.last()
        for c in completions:
            self._order.complete(c, (c.latent, c.request.params_version, last.state_version if last else -1))
        out = []
        # the decoder is causal with state: frames go through it strictly in order
        for lr_u8, (z, *versions) in self._order.release():
            self.carried = tuple(versions)
            h, w = self.size
            detail = self.store.snapshot["detail"]  # output-class: the next frame out uses it
            with torch.inference_mode():
                with self.clock("decoder"):
                    y, self._dec_state = self.models.decoder(z[None, :, None], self._dec_state)
                with self.clock("bicubic"):
                    base = bicubic_u8(lr_u8, self.scale)
                with self.clock("compose"):
                    hr = compose(base, y[:, :, 0], detail)[0, :, : h * self.scale, : w * self.scale]
                    out.append(hr.permute(1, 2, 0).contiguous().numpy())
        return out
