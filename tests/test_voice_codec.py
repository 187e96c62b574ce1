"""The voice codec streams: block by block equals the whole signal, with no look-ahead."""

import json

import pytest
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


def test_training_script_writes_a_codec_that_loads_and_a_card(tmp_path):
    import json

    from pipelines.voice import data, train_codec
    from pipelines.voice.checkpoint import load_codec

    assert data.main(["--out", str(tmp_path / "d"), "--speakers", "5", "--human-variants", "1", "--sentences", "5"]) == 0
    assert train_codec.main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "m"), "--minutes", "0.05",
                             "--batch", "2", "--width", "4", "--eval-clips", "3"]) == 0
    card = json.loads((tmp_path / "m" / "house.json").read_text())
    assert card["hop"] == HOP and card["steps"] > 0 and card["metrics_heldout"]["mrstft_distance"] > 0
    codec = load_codec(tmp_path / "m")
    assert codec.cfg.width == 4 and (tmp_path / "m" / "README.md").is_file()
    # a decoder-only stage on top: the encoder (so the latents a converter learned) stays as it was
    assert train_codec.main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "m2"), "--init", str(tmp_path / "m"),
                             "--decoder-only", "--stats", "1", "--minutes", "0.03", "--batch", "2",
                             "--eval-clips", "2"]) == 0
    after = load_codec(tmp_path / "m2")
    for (name, a), (_, b) in zip(codec.state_dict().items(), after.state_dict().items()):
        assert torch.equal(a, b) == name.startswith("encoder."), name
    card = json.loads((tmp_path / "m2" / "house.json").read_text())
    assert [b["steps"] for b in card["before"]] == [json.loads((tmp_path / "m" / "house.json").read_text())["steps"]]
    with pytest.raises(SystemExit):
        train_codec.main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "m3"), "--decoder-only"])


def test_a_missing_codec_folder_is_a_clear_error(tmp_path):
    import pytest

    from pipelines.errors import ModelFolderError
    from pipelines.voice.checkpoint import load_codec

    with pytest.raises(ModelFolderError, match="house.json: missing"):
        load_codec(tmp_path)


def test_converter_training_writes_models_the_stream_loads(tmp_path):
    import numpy as np

    from pipelines.voice import data, train, train_codec
    from pipelines.voice.checkpoint import load_voice
    from pipelines.voice.stream import StreamingVC

    assert data.main(["--out", str(tmp_path / "d"), "--speakers", "5", "--human-variants", "0", "--sentences", "5"]) == 0
    assert train_codec.main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "m"), "--minutes", "0.02",
                             "--batch", "2", "--width", "4", "--eval-clips", "2"]) == 0
    assert train.main(["--data", str(tmp_path / "d"), "--models", str(tmp_path / "m"), "--minutes", "0.03",
                       "--batch", "4", "--width", "16"]) == 0
    models, speaker_encoder = load_voice(tmp_path / "m")
    with torch.no_grad():
        target = speaker_encoder(torch.randn(1, models.latent_mean.numel(), 200))[0]
    vc = StreamingVC(models, target, watchdog=False)
    out = np.concatenate([vc.push(np.random.default_rng(0).standard_normal(1600).astype(np.float32) * 0.1),
                          vc.flush()])
    assert out.size == 1600 + 160 and np.isfinite(out).all()  # behind by the 10 ms crossfade
    # a second stage resumes from the first and records it; a converter of another shape cannot resume
    common = ["--data", str(tmp_path / "d"), "--models", str(tmp_path / "m"), "--batch", "4"]
    first = json.loads((tmp_path / "m" / "converter.json").read_text())
    assert train.main(common + ["--init", str(tmp_path / "m"), "--minutes", "0.02", "--width", "16", "--parallel", "1"]) == 0
    card = json.loads((tmp_path / "m" / "converter.json").read_text())
    assert [b["command"] for b in card["before"]] == [first["command"]]
    assert card["train_minutes_total"] == round(card["train_minutes"] + first["train_minutes"], 1)
    with pytest.raises(SystemExit):
        train.main(common + ["--init", str(tmp_path / "m"), "--width", "8"])
    with pytest.raises(SystemExit):
        train.main(common + ["--parallel", "1.5"])


def test_the_synthesis_head_starts_as_an_exact_inverse_dft():
    """Fed the spectra of overlapping two-frame windows, the decoder's last convolution
    overlap-adds them back into the signal: training starts from a true inverse."""
    from pipelines.voice.codec import CausalConv1d, _bins, _init_synthesis

    bins = _bins(2)
    synthesis = CausalConv1d(2 * bins, HOP, 2).double()
    _init_synthesis(synthesis.conv)
    signal = torch.randn(10 * HOP, dtype=torch.float64)
    frames = torch.stack([signal[t * HOP : t * HOP + 2 * HOP] for t in range(9)])
    spectra = torch.fft.rfft(frames, dim=-1)
    with torch.no_grad():
        out, _ = synthesis(torch.cat([spectra.real, spectra.imag], dim=-1).T[None])
    rebuilt = out[0].T.reshape(-1)  # frame t's first half lands in output frame t, its second half in t + 1
    assert torch.allclose(rebuilt[HOP : 9 * HOP], signal[HOP : 9 * HOP], atol=1e-5)  # float32 weights
