"""Video SR models: causal streaming equals whole-clip runs; the one-step refiner runs in the ring."""

import numpy as np
import pytest
import torch

from engine import Ring, StateStore, TorchDenoiser, request_from_state
from pipelines.video_sr.models import CausalDecoder, Encoder, LatentUpsampler, SRConfig, SRDenoiser

C = SRConfig().latent_channels


def _randomised(module: torch.nn.Module) -> torch.nn.Module:
    """Random weights where they start at zero (the decoder's head, the refiner's output)."""
    for p in module.parameters():
        if not p.detach().any():
            p.data.normal_(0, 0.05)
    return module.eval()


def test_an_untrained_cascade_adds_nothing_to_bicubic():
    z = torch.randn(1, C, 2, 8, 8)
    assert CausalDecoder()(z)[0].abs().max() == 0
    x = torch.randn(2, C, 8, 8)
    assert SRDenoiser()(x, torch.full((2,), 0.3), {"z_up": x}).abs().max() == 0


@pytest.mark.parametrize("scale", [2, 4])
def test_upsampler_and_decoder_stream_frame_by_frame_as_they_run_whole(scale):
    torch.manual_seed(scale)
    up, dec = _randomised(LatentUpsampler(scale)), _randomised(CausalDecoder())
    lr = torch.rand(1, 3, 6, 64 // scale, 64 // scale)
    with torch.no_grad():
        z, _ = up(lr)
        hr, _ = dec(z)
        assert z.shape == (1, C, 6, 16, 16) and hr.shape == (1, SRConfig().detail_channels, 6, 64, 64)
        assert hr.abs().mean() > 1e-3
        su = sd = None
        frames = []
        for t in range(6):
            zt, su = up(lr[:, :, t : t + 1], su)
            ht, sd = dec(zt, sd)
            frames.append(ht)
        assert torch.allclose(torch.cat(frames, dim=2), hr, atol=1e-5)
        assert Encoder()(torch.rand(1, 3, 6, 64, 64)).shape == z.shape


def test_the_refiner_runs_in_the_ring_one_step_from_the_upsampled_latent():
    torch.manual_seed(0)
    model = _randomised(SRDenoiser())
    denoiser = TorchDenoiser(model, lambda x, s, c: model(x, s, c))
    store = StateStore(initial={"steps": 1, "strength": 0.3, "depth": 4})
    ring = Ring(denoiser, (C, 16, 16), store=store, frame_dim=0)
    sources = [torch.randn(C, 16, 16) for _ in range(4)]
    for z_up in sources:  # consecutive frames, each its own slot
        ring.submit(request_from_state(store.snapshot, cond={"z_up": z_up}, source=z_up))
    done = ring.run_until_idle()
    assert len(done) == 4 and all(c.schedule.steps == 1 for c in done)
    assert all(torch.isfinite(c.latent).all() for c in done)


def test_training_script_writes_weights_and_a_card(tmp_path):
    """Both scales in parallel processes (--jobs 2), then the card from both; --init continues one."""
    import json

    from pipelines.video_sr import data, train
    from pipelines.video_sr.checkpoint import PARTS, load_video_sr

    # the pictures inside the Python packages: the wallpaper packages come only with the corpus's own setup
    assert data.main(["--out", str(tmp_path / "d"), "--clips", "19", "--frames", "4", "--size", "32",
                      "--pictures", "wheels"]) == 0
    common = ["--data", str(tmp_path / "d"), "--minutes", "0.03", "--batch", "2", "--frames", "2", "--width", "8",
              "--latent-channels", "4", "--temporal-weight", "1"]
    assert train.main([*common, "--out", str(tmp_path / "m"), "--jobs", "2"]) == 0
    card = json.loads((tmp_path / "m" / "house.json").read_text())
    assert card["scales"] == [2, 4]
    for scale in (2, 4):
        entry = card[f"x{scale}"]
        assert set(entry["train_minutes"]) == {"cascade", "encoder", "refiner"}
        assert entry["config"]["width"] == 8 and entry["config"]["latent_channels"] == 4
        assert all(entry["metrics_heldout"][k] > 0 for k in ("psnr_sr", "psnr_bicubic"))
        assert {p.name for p in (tmp_path / "m" / f"x{scale}").glob("*.safetensors")} == {f"{p}.safetensors" for p in PARTS}
        # what it wrote loads through the one loader the renderer uses
        assert load_video_sr(tmp_path / "m", scale).sigma == entry["sigma"]
    readme = (tmp_path / "m" / "README.md").read_text()
    assert "--scales 2" in readme and "--scales 4" in readme and "x2:" in readme and "x4:" in readme
    assert "- detail: x2" in readme and "- steady: x2" in readme  # the defaults each scale starts at
    # continuing one scale keeps the other's entry and weights
    before = (tmp_path / "m" / "x2" / "decoder.safetensors").read_bytes()
    assert train.main([*common, "--out", str(tmp_path / "m"), "--scales", "4", "--init", str(tmp_path / "m")]) == 0
    after = json.loads((tmp_path / "m" / "house.json").read_text())
    assert after["x2"] == card["x2"] and after["scales"] == [2, 4] and "--init" in after["x4"]["command"]
    assert (tmp_path / "m" / "x2" / "decoder.safetensors").read_bytes() == before
    # --stages trains only the stages named; the others stay as --init left them
    parts = lambda: {p: (tmp_path / "m" / "x4" / f"{p}.safetensors").read_bytes() for p in PARTS}  # noqa: E731
    kept = parts()
    assert train.main([*common, "--out", str(tmp_path / "m"), "--scales", "4", "--init", str(tmp_path / "m"),
                       "--stages", "refiner"]) == 0
    now = parts()
    assert [p for p in PARTS if now[p] != kept[p]] == ["refiner"]
    with pytest.raises(SystemExit) as err:
        train.main([*common, "--out", str(tmp_path / "n"), "--stages", "refiner"])  # nothing to keep the rest from
    assert err.value.code == 2
    # --evaluate re-measures a folder (every start sigma, the best one becomes the default), weights untouched
    assert train.main(["--data", str(tmp_path / "d"), "--evaluate", str(tmp_path / "m"), "--scales", "2"]) == 0
    again = json.loads((tmp_path / "m" / "house.json").read_text())["x2"]
    assert {f"psnr_sr_sigma_{s:g}" for s in train.EVAL_SIGMAS} <= set(again["metrics_heldout"])
    # the best sigma, then the best detail scale at that sigma (detail 1 is that sigma's own figure),
    # then the best steady blend at that detail (steady 0 is that detail's own figure)
    metrics = again["metrics_heldout"]
    by_sigma = {s: metrics[f"psnr_sr_sigma_{s:g}"] for s in train.EVAL_SIGMAS}
    assert by_sigma[again["sigma"]] == max(by_sigma.values())
    best_detail = max(metrics[f"psnr_sr_detail_{d:g}"] for d in train.EVAL_DETAILS)
    assert metrics["psnr_sr_steady_0"] == pytest.approx(best_detail)
    assert metrics["psnr_sr_detail_1"] == pytest.approx(metrics[f"psnr_sr_sigma_{again['sigma']:g}"])
    # steady: the best PSNR among the blends within the flicker goal, else the steadiest
    steady = {s: (metrics[f"psnr_sr_steady_{s:g}"], metrics[f"flicker_steady_{s:g}"]) for s in train.EVAL_STEADY}
    enough = {s: p for s, (p, f) in steady.items() if f <= train.FLICKER_GOAL}
    best = max(enough, key=enough.get) if enough else min(steady, key=lambda s: steady[s][1])
    assert again["steady"] == best and metrics["psnr_sr"] == steady[best][0] and metrics["flicker_ratio"] == steady[best][1]
    assert metrics["flicker_ratio"] > 0
    assert again["command"] == card["x2"]["command"] and again["detail"] in train.EVAL_DETAILS
    assert again["steady"] in train.EVAL_STEADY
    models = load_video_sr(tmp_path / "m", 2)
    assert (models.detail, models.steady) == (again["detail"], again["steady"])
    assert (tmp_path / "m" / "x2" / "decoder.safetensors").read_bytes() == before
    with pytest.raises(SystemExit) as err:
        train.main(["--data", str(tmp_path / "d"), "--evaluate", str(tmp_path / "d")])
    assert err.value.code == 2


def test_training_batches_are_augmented_with_hr_and_lr_still_paired():
    from pipelines.video_sr.train import batch

    hr = torch.randint(0, 256, (3, 3, 5, 16, 16), dtype=torch.uint8)
    lr = torch.nn.functional.avg_pool3d(hr.float(), (1, 4, 4)).round().to(torch.uint8)  # a known pairing
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        x, low = batch(hr, lr, 4, 3, rng)
        assert torch.allclose(torch.nn.functional.avg_pool3d(x * 255, (1, 4, 4)).round(), low * 255, atol=1e-3)
        seen.add(tuple(x[0, :, 0, 0, 0].tolist()))
    assert len(seen) > 5  # windows, mirrors and channel orders differ from batch to batch


def test_the_temporal_weight_charges_flicker_the_truth_does_not_have():
    from pipelines.video_sr.train import clip_errors

    truth = torch.rand(2, 3, 4, 8, 8)
    steady = truth + 0.05  # the same error every frame
    flicker = truth + 0.05 * torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, 1, 4, 1, 1)  # same size, alternating
    for y in (steady, flicker):  # without the term both cost their MSE alone
        assert torch.allclose(clip_errors(y, truth, 0.0), torch.full((2,), 0.0025))
    assert torch.allclose(clip_errors(steady, truth, 2.0), clip_errors(steady, truth, 0.0))
    assert (clip_errors(flicker, truth, 2.0) > clip_errors(flicker, truth, 0.5)).all()
