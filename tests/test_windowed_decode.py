"""Windowed decode equals the full decode inside the window, at a cost set by the window."""

import pytest
import torch

from engine import InputError
from engine.windowed import DecoderGeometry, decode_window, plan_window
from pipelines.music.codec import HOP, build_codec, decoder_fn, measure_geometry


@pytest.fixture(scope="module")
def codec():
    model = build_codec(seed=3)
    return model, decoder_fn(model), measure_geometry(model)


def test_measured_halo_is_small_and_sufficient(codec):
    model, decode, geom = codec
    assert geom.hop == HOP  # the house codec: 25 latent frames a second
    assert 1 <= geom.halo <= 12
    z = torch.randn(1, 16, 48, generator=torch.Generator().manual_seed(0))
    full = decode(z)
    total = 48 * geom.hop
    windows = [(0, 900), (7 * geom.hop + 13, 11 * geom.hop + 5), (total - 2000, total), (total // 2, total // 2 + 1)]
    for start, stop in windows:
        part = decode_window(decode, z, start, stop, geom)
        assert part.shape[-1] == stop - start
        assert (part - full[..., start:stop]).abs().max().item() <= 1e-4, (start, stop)


def test_a_halo_short_of_the_receptive_field_is_wrong(codec):
    model, decode, geom = codec
    z = torch.randn(1, 16, 48, generator=torch.Generator().manual_seed(1))
    full = decode(z)
    short = DecoderGeometry(geom.hop, max(0, geom.halo - 4))
    start, stop = 20 * geom.hop, 24 * geom.hop
    assert (decode_window(decode, z, start, stop, short) - full[..., start:stop]).abs().max().item() > 1e-4


def test_the_decoded_span_does_not_grow_with_the_clip(codec):
    _, _, geom = codec
    spans = {plan_window(10_000, 18_000, frames, geom).frames for frames in (100, 1_500, 15_000, 150_000)}
    assert len(spans) == 1


@pytest.mark.parametrize("start,stop", [(-1, 10), (10, 10), (0, 10**9)])
def test_bad_windows_name_the_field(codec, start, stop):
    _, _, geom = codec
    with pytest.raises(InputError) as err:
        plan_window(start, stop, 100, geom)
    assert err.value.field == "window"


def test_loop_windows_equal_the_tiled_decode_across_the_seam(codec):
    from engine.windowed import decode_loop_window

    model, decode, geom = codec
    z = torch.randn(1, 16, 30, generator=torch.Generator().manual_seed(4))
    period = 30 * geom.hop
    tiled = decode(torch.cat([z, z, z], dim=-1))[..., period : 2 * period + period]  # middle copy onwards
    for start, stop in [(0, 700), (period - 900, period + 400), (period - 1, period), (5 * geom.hop, 5 * geom.hop + period)]:
        part = decode_loop_window(decode, z, start, stop, geom)
        assert part.shape[-1] == stop - start
        assert (part - tiled[..., start:stop]).abs().max().item() <= 1e-4, (start, stop)
    with pytest.raises(InputError, match="window"):
        decode_loop_window(decode, z, period, period + 10, geom)
