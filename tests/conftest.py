"""Shared fixtures: a tiny transformer denoiser that runs in milliseconds."""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from engine import TorchDenoiser

FRAMES, CHANNELS, TEXT = 24, 8, 6
SHAPE = (FRAMES, CHANNELS)


class TinyTransformer(torch.nn.Module):
    """A small attention denoiser: latent (B, T, C), one sigma per row, a text vector."""

    def __init__(self, channels: int = CHANNELS, hidden: int = 32, text: int = TEXT):
        super().__init__()
        self.inp = torch.nn.Linear(channels, hidden)
        self.time = torch.nn.Linear(1, hidden)
        self.text = torch.nn.Linear(text, hidden)
        self.block = torch.nn.TransformerEncoderLayer(hidden, 4, 64, batch_first=True, dropout=0.0)
        self.out = torch.nn.Linear(hidden, channels)

    def forward(self, x, sigma, cond):
        h = self.inp(x) + self.time(sigma[:, None, None]) + self.text(cond["text"])[:, None, :]
        return self.out(self.block(h))


@pytest.fixture(scope="session")
def denoiser():
    torch.manual_seed(1234)
    model = TinyTransformer()
    return TorchDenoiser(model, lambda x, s, c: model(x, s, c))


@pytest.fixture
def null_cond():
    return {"text": torch.zeros(TEXT)}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A tiny random complete folder in the house models' audio format (16 kHz mono, 25
    latent frames/s), a base checkpoint as they are (APG by default)."""
    from acestep_folder import build_folder

    return build_folder(tmp_path_factory.mktemp("tiny_models"), "base", seed=1, audio="16k")


@pytest.fixture(scope="session")
def acestep_folders(tmp_path_factory):
    """`acestep_folders(variant)`: a tiny complete ACE-Step 1.5 folder ("turbo" or "base"),
    built offline on first use (tests/acestep_folder.py); read-only, copy it to change it."""
    from acestep_folder import build_folder

    built = {}

    def folder(variant: str = "turbo"):
        if variant not in built:
            built[variant] = build_folder(tmp_path_factory.mktemp(f"acestep_{variant}"), variant)
        return built[variant]

    return folder


@pytest.fixture(scope="module")
def turbo(acestep_folders):
    """The tiny turbo ACE-Step folder, loaded by our model loader."""
    from pipelines.music.models import load_music_models

    return load_music_models(acestep_folders("turbo"))


@pytest.fixture(scope="module")
def base(acestep_folders):
    """The tiny base ACE-Step folder, loaded by our model loader."""
    from pipelines.music.models import load_music_models

    return load_music_models(acestep_folders("base"))


@contextmanager
def serving(rig, config, media: str | None = "audio"):
    """`rig`'s engine playing in real time on its own thread, its page served with `config`
    and fed the engine's `media` ("audio", "video" or None); yields (engine, web server), and
    stops both on exit."""
    from web.server import WebServer

    live = rig.engine
    web = WebServer(rig.session, config, counters=rig.live_counters, view=rig.view).start()
    if media is not None:
        live.taps.append(getattr(web, media))
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield live, web
    finally:
        stop.set()
        thread.join(timeout=10)
        web.stop()


@pytest.fixture
def engine(tiny_models, tmp_path):
    """The live engine (tiny models) playing in real time, with the page served on a free port."""
    from demon.rigs import music_rig
    from pipelines.audio_out import NullSink, OutputConfig
    from pipelines.music.models import load_music_models
    from web.server import WebConfig

    models = load_music_models(tiny_models)
    # guidance 1: one row per slot, the load the deadline test was sized for (the tiny base
    # folder's own default, APG at 7, doubles every tick)
    rig = music_rig(models, NullSink(OutputConfig(16_000)),
                    initial={"loop_seconds": 3.0, "steps": 3, "depth": 2, "guidance": 1.0})
    with serving(rig, WebConfig(port=0, presets=tmp_path / "presets")) as served:
        yield served


OUT = Path(__file__).resolve().parents[1] / "out"  # screenshots the test run saves, to be looked at
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def launch_chromium(pw, env=None):
    """Debian's Chromium, headless, through Playwright (audio allowed to start without a click)."""
    return pw.chromium.launch(executable_path=CHROMIUM, env=env,
                              args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"])


def wait_for(predicate, timeout=10.0, interval=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


@contextmanager
def browser_tab(url: str, env=None, viewport=(1400, 1000)):
    """A tab of Debian's headless Chromium on `url`, once the page has built its controls;
    any uncaught page error fails the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw, env)
        try:
            tab = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            errors = []
            tab.on("pageerror", lambda err: errors.append(str(err)))
            tab.goto(url)
            tab.wait_for_function("Object.keys(window.demon.controls).length > 0", timeout=15_000)
            yield tab
            assert not errors, errors
        finally:
            browser.close()


@pytest.fixture
def page(engine, pulse_null_sink):
    """The performer page in a real headless Chromium, on the live engine (tiny models)."""
    live, web = engine
    with browser_tab(web.url, pulse_null_sink["env"]) as tab:
        yield tab, live, web


@pytest.fixture(scope="session")
def tiny_video_sr(tmp_path_factory):
    """A randomly initialised video SR model folder (the code path of the house models)."""
    from pipelines.video_sr.checkpoint import save_scale
    from pipelines.video_sr.models import CausalDecoder, Encoder, LatentUpsampler, SRConfig, SRDenoiser

    torch.manual_seed(0)
    cfg = SRConfig(width=8, blocks=1, latent_channels=8)
    folder = tmp_path_factory.mktemp("video_sr")
    for scale in (2, 4):
        modules = {"encoder": Encoder(cfg), "decoder": CausalDecoder(cfg), "refiner": SRDenoiser(cfg),
                   "upsampler": LatentUpsampler(scale, cfg)}
        for m in modules.values():  # random weights large enough that every stage matters
            for p in m.parameters():
                p.data.normal_(0, 0.2)
        save_scale(folder, scale, cfg, modules, {"sigma": 0.3})
    return folder


@pytest.fixture(scope="session")
def tiny_voice(tmp_path_factory):
    """A randomly initialised voice model folder (codec, converter, speaker encoder)."""
    from pipelines.voice.checkpoint import save_codec, save_voice
    from pipelines.voice.codec import CodecConfig, VoiceCodec
    from pipelines.voice.models import Converter, SpeakerEncoder, VoiceConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("voice")
    save_codec(folder, VoiceCodec(CodecConfig(width=4, latent=8)), {})
    cfg = VoiceConfig(latent=8, width=16, speaker=8, blocks=2)
    save_voice(folder, SpeakerEncoder(cfg), Converter(cfg),
               {"config": {"latent": 8, "width": 16, "speaker": 8, "blocks": 2}, "latent_mean": [0.0] * 8,
                "latent_std": [1.0] * 8})
    return folder


def text(seed: int) -> dict[str, torch.Tensor]:
    return {"text": torch.randn(TEXT, generator=torch.Generator().manual_seed(seed))}


def latent(seed: int) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def pytest_addoption(parser):
    parser.addoption("--cpu-hog", action="store_true",
                     help="run beside a process spinning on every core (the audio path must hold on a loaded machine)")


@pytest.fixture(scope="session", autouse=True)
def cpu_hog(request):
    """With --cpu-hog, one process per core spins for the whole session."""
    import os
    import subprocess
    import sys

    if not request.config.getoption("--cpu-hog"):
        yield []
        return
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    yield hogs
    for hog in hogs:
        hog.kill()
        hog.wait()


@pytest.fixture(scope="session")
def pulse_null_sink(tmp_path_factory):
    """A private PulseAudio server with one null sink; PortAudio reaches it through ALSA's pulse plugin."""
    import os

    from contextlib import ExitStack

    from pulse_server import null_sink_server

    with ExitStack() as stack:
        try:
            pulse = stack.enter_context(null_sink_server(tmp_path_factory.mktemp("pulse")))
        except RuntimeError as err:
            pytest.fail(str(err))
        old = {k: os.environ.get(k) for k in ("PULSE_SERVER", "XDG_RUNTIME_DIR")}
        os.environ["PULSE_SERVER"] = pulse["server"]
        os.environ["XDG_RUNTIME_DIR"] = pulse["env"]["XDG_RUNTIME_DIR"]
        yield pulse
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
