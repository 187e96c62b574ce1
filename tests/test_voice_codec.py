"""The voice codec streams: block by block equals the whole signal, with no look-ahead."""

import torch

from pipelines.voice.codec import HOP, LOOKAHEAD_SAMPLES, CodecConfig, VoiceCodec


def test_streaming_encode_and_decode_equal_the_whole_signal():
    torch.manual_seed(0)
    codec = VoiceCodec(CodecConfig(width=4, latent=8)).eval()
    assert codec.hop == HOP == 160 and LOOKAHEAD_SAMPLES == 0
    audio = torch.randn(2, 1, 12 * HOP) * 0.3
    with torch.no_grad():
        z, _ = codec.encoder(audio)
        y, _ = codec.decoder(z)
        assert z.shape == (2, 8, 12) and y.shape == audio.shape
        zs, ys, es, ds = [], [], None, None
        for blocks in (1, 3, 2, 4, 2):  # uneven blocks of whole frames
            start = sum(b.shape[-1] for b in zs) * HOP
            zb, es = codec.encoder(audio[..., start : start + blocks * HOP], es)
            yb, ds = codec.decoder(zb, ds)
            zs.append(zb)
            ys.append(yb)
    assert torch.allclose(torch.cat(zs, -1), z, atol=1e-5)
    assert torch.allclose(torch.cat(ys, -1), y, atol=1e-5)


def test_no_output_depends_on_a_later_frame():
    torch.manual_seed(1)
    codec = VoiceCodec(CodecConfig(width=4, latent=8)).eval()
    a = torch.randn(1, 1, 8 * HOP)
    b = a.clone()
    b[..., 5 * HOP :] = torch.randn(1, 1, 3 * HOP)  # a different future from frame 5 on
    with torch.no_grad():
        za, zb = codec.encoder(a)[0], codec.encoder(b)[0]
        ya, yb = codec.decoder(za)[0], codec.decoder(zb)[0]
    assert torch.equal(za[..., :5], zb[..., :5]) and not torch.equal(za[..., 5:], zb[..., 5:])
    assert torch.equal(ya[..., : 5 * HOP], yb[..., : 5 * HOP])
