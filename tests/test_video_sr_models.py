"""Video SR models: causal streaming equals whole-clip runs; the one-step refiner runs in the ring."""

import pytest
import torch

from engine import Ring, StateStore, TorchDenoiser, request_from_state
from pipelines.video_sr.models import LATENT_CHANNELS, CausalDecoder, Encoder, LatentUpsampler, SRDenoiser


@pytest.mark.parametrize("scale", [2, 4])
def test_upsampler_and_decoder_stream_frame_by_frame_as_they_run_whole(scale):
    torch.manual_seed(scale)
    up, dec = LatentUpsampler(scale).eval(), CausalDecoder().eval()
    lr = torch.rand(1, 3, 6, 64 // scale, 64 // scale)
    with torch.no_grad():
        z, _ = up(lr)
        hr, _ = dec(z)
        assert z.shape == (1, LATENT_CHANNELS, 6, 16, 16) and hr.shape == (1, 3, 6, 64, 64)
        su = sd = None
        frames = []
        for t in range(6):
            zt, su = up(lr[:, :, t : t + 1], su)
            ht, sd = dec(zt, sd)
            frames.append(ht)
        assert torch.allclose(torch.cat(frames, dim=2), hr, atol=1e-5)
        assert Encoder()(hr).shape == z.shape


def test_the_refiner_runs_in_the_ring_one_step_from_the_upsampled_latent():
    torch.manual_seed(0)
    model = SRDenoiser().eval()
    denoiser = TorchDenoiser(model, lambda x, s, c: model(x, s, c))
    store = StateStore(initial={"steps": 1, "strength": 0.3, "depth": 4})
    ring = Ring(denoiser, (LATENT_CHANNELS, 16, 16), store=store, frame_dim=0)
    sources = [torch.randn(LATENT_CHANNELS, 16, 16) for _ in range(4)]
    for z_up in sources:  # consecutive frames, each its own slot
        ring.submit(request_from_state(store.snapshot, cond={"z_up": z_up}, source=z_up))
    done = ring.run_until_idle()
    assert len(done) == 4 and all(c.schedule.steps == 1 for c in done)
    assert all(torch.isfinite(c.latent).all() for c in done)


def test_training_script_writes_weights_and_a_card(tmp_path):
    import json

    from pipelines.video_sr import data, train

    assert data.main(["--out", str(tmp_path / "d"), "--clips", "19", "--frames", "4", "--size", "32"]) == 0
    assert train.main(["--data", str(tmp_path / "d"), "--out", str(tmp_path / "m"), "--minutes", "0.03",
                       "--batch", "2", "--frames", "2"]) == 0
    card = json.loads((tmp_path / "m" / "house.json").read_text())
    assert card["scales"] == [2, 4]
    assert set(card["train_minutes"]) == {"autoencoder", "upsampler_x2", "upsampler_x4", "refiner"}
    for scale in (2, 4):
        assert all(card["metrics_heldout"][f"x{scale}"][k] > 0 for k in ("psnr_sr", "psnr_bicubic"))
    assert {p.name for p in (tmp_path / "m").glob("*.safetensors")} == {
        "encoder.safetensors", "decoder.safetensors", "upsampler_x2.safetensors", "upsampler_x4.safetensors",
        "refiner.safetensors"}
    # what it wrote loads through the one loader the renderer uses
    from pipelines.video_sr.checkpoint import load_video_sr

    assert load_video_sr(tmp_path / "m", 2).sigma == card["sigma"]
