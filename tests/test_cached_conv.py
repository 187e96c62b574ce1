"""Streaming layers report their geometry: the look-ahead and receptive field read off the
layers are the figures the pipelines had written down, and what a probe of the network finds."""

from fractions import Fraction

import pytest
import torch

from pipelines.cached_conv import CachedConv, CachedSequence, Pointwise, Repeat
from pipelines.video_sr.models import CausalDecoder, LatentUpsampler, SRConfig, cascade_geometry
from pipelines.video_sr.stream import LOOKAHEAD_FRAMES
from pipelines.voice.codec import HOP, LOOKAHEAD_SAMPLES, CodecConfig, VoiceCodec


def test_the_derived_figures_are_the_ones_written_before():
    codec = VoiceCodec(CodecConfig(width=4, latent=8))
    assert LOOKAHEAD_SAMPLES == codec.lookahead == 0 and codec.hop == HOP == 160
    assert LOOKAHEAD_FRAMES == 0
    cfg = SRConfig()
    # a stem, two convs a block; the upsampler's head sees one frame
    context = (cfg.time_kernel - 1) + (cfg.block_time_kernel - 1) * 2 * cfg.blocks
    for part in (LatentUpsampler(4, cfg), LatentUpsampler(2, cfg), CausalDecoder(cfg)):
        assert part.geometry.context == context and part.geometry.lookahead == 0


def _changed_steps(run, x: torch.Tensor, at: int) -> list[int]:
    """The output time steps that change when input time step `at` does (time: axis 2)."""
    moved = x.clone()
    moved.select(2, at).add_(1.0)
    return (run(x) != run(moved)).transpose(0, 2).flatten(1).any(1).nonzero().flatten().tolist()


def test_the_video_cascade_reaches_back_as_far_as_its_layers_say():
    torch.manual_seed(0)
    up, dec = LatentUpsampler(4).double().eval(), CausalDecoder().double().eval()
    torch.nn.init.normal_(dec.head.weight, std=0.05)  # it starts at zero: nothing would change
    reach = cascade_geometry(up, dec).halo
    lr = torch.rand(1, 3, reach + 4, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        changed = _changed_steps(lambda x: dec(up(x)[0])[0], lr, 0)
    assert reach == 2 and changed == list(range(reach + 1))  # the two stems each see one frame back


def test_the_voice_codec_reaches_back_as_far_as_its_layers_say():
    torch.manual_seed(0)
    codec = VoiceCodec(CodecConfig(width=4, latent=8)).double().eval()
    enc, dec = codec.encoder.geometry, codec.decoder.geometry
    audio = 0.3 * torch.randn(1, 1, 40 * HOP, dtype=torch.float64)
    with torch.no_grad():
        for at in (0, 37, 159, 1000):  # a sample changes the frames from its own to those reaching back to it
            assert _changed_steps(lambda x: codec.encoder(x)[0], audio, at) == list(
                range(at // HOP, (at + int(enc.context)) // HOP + 1))
        z = codec.encoder(audio)[0]
        samples = _changed_steps(lambda x: codec.decoder(x)[0], z, 0)
    # a window of decoded frames needs `halo` latent frames before it, and not one fewer
    # (the synthesis window is zero at a frame's first sample, so the change starts at its second)
    assert samples[0] // HOP == 0 and samples[-1] // HOP == dec.halo == 39


def test_a_sequence_streams_block_by_block_as_it_runs_whole():
    torch.manual_seed(0)
    layers = CachedSequence([CachedConv(torch.nn.Conv1d(2, 3, 4, stride=2)), Pointwise(torch.tanh), Repeat(3),
                             CachedConv(torch.nn.Conv1d(3, 2, 3, dilation=2))])
    assert (layers.geometry.ratio, layers.geometry.context) == (Fraction(2, 3), 2 + 4 * Fraction(2, 3))
    x = torch.randn(1, 2, 24)
    with torch.no_grad():
        whole, _ = layers(x)
        parts, state = [], None
        for a, b in ((0, 2), (2, 8), (8, 10), (10, 24)):
            y, state = layers(x[..., a:b], state)
            parts.append(y)
    assert torch.allclose(torch.cat(parts, -1), whole, atol=1e-6)


def test_a_convolution_that_pads_time_itself_is_refused():
    with pytest.raises(ValueError, match="pads time with its cache"):
        CachedConv(torch.nn.Conv1d(1, 1, 3, padding=1))
