"""Live music on a complete ACE-Step 1.5 folder (the tiny turbo fixture: 48 kHz stereo,
hop 1920): stereo blocks end to end (decode windows, crossfade, sample ring, sinks, the
page's audio frames), conditioning through the folder's own encoders once per request,
a prompt change heard with nothing in flight discarded, and prompt A/B morph across
prompts of different token lengths, step-class."""

import asyncio
import dataclasses
import json
import math
import shutil
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from websockets.asyncio.client import connect

from conftest import serving
from demon.rigs import music_rig
from engine import InputError, Propagation
from engine.windowed import DecoderGeometry
from pipelines.audio_out import NullSink, OutputConfig, Resampler, SoundDeviceSink
from pipelines.music.conditioning import AceStepConditioner
from pipelines.music.models import load_music_models
from pipelines.music.player import Loop, LoopPlayer
from pipelines.music.prompt import SongMeta, SongText
from pipelines.music.render import MusicJob, conditions, generate_latents
from pipelines.music.task_inputs import Source, TaskInputs
from pipelines.music.tasks import MusicTask
from web.server import WebConfig

SHORT = "piano"
LONG = "a slow warm lofi piano with brushed drums and a walking upright bass"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def stereo_rig(models, sink=None, **initial):
    if sink is None:  # consumed by hand (play) unless started
        sink = NullSink(OutputConfig(models.codec.sample_rate, buffer_seconds=4.0,
                                     channels=models.codec.audio_channels))
    return music_rig(models, sink, initial={"loop_seconds": 2.0, "steps": 2, "depth": 2, "seed": 5, **initial})


def play(live, seconds, block=1920):
    """Let the engine work while `seconds` of audio are consumed, as the device would."""
    out = np.zeros((block, live.channels), np.float32)
    for _ in range(int(seconds * live.sink.device_rate / block)):
        for _ in range(3):
            live.step()
        live.sink.ring.read_into(out)


class Spy:
    """The denoiser, recording the text conditioning of every call."""

    def __init__(self, inner):
        self.inner, self.name, self.texts = inner, inner.name, []

    def denoise(self, x, sigma, cond):
        self.texts.append(cond["text"].clone())
        return self.inner.denoise(x, sigma, cond)


@pytest.fixture
def encodes(monkeypatch):
    """Every batch the folder's encoders run, as (captions,)."""
    calls = []
    encode_batch = AceStepConditioner.encode_batch

    def counting(self, songs, timbre=None):
        calls.append(tuple(song.caption for song in songs))
        return encode_batch(self, songs, timbre)

    monkeypatch.setattr(AceStepConditioner, "encode_batch", counting)
    return calls


def test_a_stereo_player_crossfades_every_channel_alike():
    hop = 4
    player = LoopPlayer(lambda z: z[:, :2].repeat_interleave(hop, dim=-1), DecoderGeometry(hop, 0), channels=2)
    loop = lambda left, right, v: Loop(torch.tensor([left, right])[None, :, None].repeat(1, 1, 10), v, v)  # noqa: E731
    player.offer(loop(1.0, -1.0, 0))
    first, _ = player.render(12, 8)
    assert first.shape == (12, 2) and np.allclose(first, [1.0, -1.0])
    player.offer(loop(2.0, 0.5, 1))
    fade, _ = player.render(8, 8)
    t = np.arange(8) / 8
    g_out, g_in = np.cos(0.5 * math.pi * t), np.sin(0.5 * math.pi * t)
    assert np.allclose(fade[:, 0], g_out * 1.0 + g_in * 2.0, atol=1e-6)
    assert np.allclose(fade[:, 1], g_out * -1.0 + g_in * 0.5, atol=1e-6)
    after, _ = player.render(4, 8)
    assert np.array_equal(after, np.tile([2.0, 0.5], (4, 1)))  # the decoder's level: a peak of 2 stays


def test_a_stereo_resampler_keeps_each_channel():
    rs = Resampler(48_000, 44_100, channels=2)
    t = np.arange(48_000) / 48_000
    frames = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)], axis=1).astype(np.float32)
    out = np.concatenate([rs(frames[i : i + 4800]) for i in range(0, 48_000, 4800)])
    assert out.ndim == 2 and out.shape[1] == 2 and abs(out.shape[0] - 44_100) < 300
    freqs = np.fft.rfftfreq(32_768, 1 / 44_100)
    peaks = [freqs[np.abs(np.fft.rfft(out[:32_768, c])).argmax()] for c in (0, 1)]
    assert abs(peaks[0] - 440) < 3 and abs(peaks[1] - 880) < 3


def test_a_complete_turbo_folder_plays_48k_stereo_blocks(turbo):
    rig = stereo_rig(turbo)
    live = rig.engine
    blocks = []
    live.taps.append(lambda samples, rate: blocks.append((samples.copy(), rate)))
    play(live, 2.0)
    assert live.sample_rate == 48_000 and live.channels == 2
    # the taps hear what the device played: 48 kHz stereo frames, as many as it took
    assert blocks and all(rate == 48_000 and s.ndim == 2 and s.shape[1] == 2 and s.dtype == np.float32
                          for s, rate in blocks)
    assert 0 < sum(len(s) for s, _ in blocks) <= live.sink.ring.played
    heard = [s for s, _ in blocks if np.abs(s).max() > 0]
    assert heard and any(np.abs(s[:, 0] - s[:, 1]).max() > 0 for s in heard)  # two channels, not one copied
    counters = live.live_counters()
    assert counters["completions"] >= 2 and counters["discarded_slots"] == 0 and counters["rejected_requests"] == 0
    # the folder's defaults under the given values: turbo runs without guidance; the null is the folder's own
    state = live.store.snapshot
    assert state["guidance"] == 1.0 and state["guidance_rule"] == "apg" and state["shift"] == 3.0
    null = live.ring.guidance.null["text"]
    assert torch.equal(null[0], turbo.conditioner.condition_encoder.null_condition_emb[0, 0].float())
    assert "context" not in live.ring.guidance.null  # each row keeps its own context


def test_folder_defaults_and_a_turbo_folder_refuses_guidance(acestep_folders, turbo):
    base = load_music_models(acestep_folders("base"))
    state = stereo_rig(base).engine.store.snapshot
    assert state["guidance"] == 7.0 and state["guidance_rule"] == "apg" and state["steps"] == 2
    assert stereo_rig(base, guidance_rule="cfg").engine.store.snapshot["guidance_rule"] == "cfg"
    with pytest.raises(InputError, match="turbo"):
        stereo_rig(turbo, guidance=3.0)
    with pytest.raises(ValueError, match="channels"):  # a mono sink for a stereo model is refused
        stereo_rig(turbo, sink=NullSink(OutputConfig(48_000)))


def test_a_prompt_alone_is_conditioned_as_render_conditions_it(turbo, encodes):
    song = {"lyrics": "[verse]\nla la", "key": "A minor", "time_signature": "4", "bpm": 96.0}
    live = stereo_rig(turbo, prompt_a=SHORT, **song).engine
    state = live.store.snapshot
    rows = live.conditioning.request(state, 50)
    assert live.conditioning.request(state, 50).cond["text"] is rows.cond["text"]  # cached by its inputs
    assert encodes == [(SHORT,)]
    job = MusicJob(SHORT, 2.0, {}, lyrics=song["lyrics"], meta=SongMeta(bpm=96, key="A minor", time_signature="4"))
    cond, null = conditions(turbo, job, 50)
    assert rows.cond_b is None
    assert torch.equal(rows.cond["text"], cond["text"]) and torch.equal(rows.cond["context"], cond["context"])
    assert torch.equal(live.ring.guidance.null["text"], null["text"])


def test_a_prompt_change_is_heard_and_nothing_in_flight_is_discarded(turbo, encodes):
    rig = stereo_rig(turbo, prompt_a=SHORT, depth=4, steps=4)
    live, session = rig.engine, rig.session
    play(live, 1.5)
    old, old_key = live.ring, live.rings.key
    assert old.occupied >= 2
    session.set("prompt_a", LONG)
    play(live, 3.0)
    counters = live.live_counters()
    assert counters["discarded_slots"] == 0 and counters["rejected_requests"] == 0
    assert old.occupied == 0 and old.counters.completed == old.counters.admitted  # finished, and played
    assert live.ring is not old and live.rings.key[:2] == old_key[:2] and live.rings.key[2] > old_key[2]
    assert "prompt_a" in live.onsets.onsets_ms()  # a loop born after the change was heard
    # the encoders ran once per distinct request, never per tick
    assert encodes == [(SHORT,), (LONG,)] and counters["ticks"] > 10


def test_prompt_morph_across_token_lengths_is_step_class(turbo, encodes):
    spy = Spy(turbo.denoiser)
    rig = stereo_rig(dataclasses.replace(turbo, denoiser=spy), prompt_a=SHORT, steps=4)
    live, session = rig.engine, rig.session
    play(live, 1.0)
    session.set("prompt_b", LONG)
    play(live, 1.5)  # rows with B are admitted, on a ring of the pair's padded length
    state = live.store.snapshot
    rows = live.conditioning.request(state, live.ring.frames)
    assert encodes[-1] == (SHORT, LONG) and live.rings.key[2] == rows.length  # A and B encoded as one batch
    alone = [turbo.conditioner.encode(SongText(c, seconds=2.0, meta=SongMeta(bpm=120))).shape[0] for c in (SHORT, LONG)]
    assert alone[0] < alone[1] == rows.length == rows.cond_b["text"].shape[0]  # A padded to B's tokens
    in_flight = [row for row, _, _ in live.ring.in_flight().values()]
    assert in_flight and bool(live.ring.guidance.has_b[in_flight].all())
    spy.texts.clear()
    session.set("prompt_blend", 1.0)
    while not spy.texts:
        live.step()
    # the next tick: every slot already in flight reads B
    b = rows.cond_b["text"]
    assert all(torch.allclose(spy.texts[0][row], b, atol=1e-5) for row in in_flight)
    assert not torch.allclose(rows.cond["text"], b, atol=1e-3)
    play(live, 1.0)
    counters = live.live_counters()
    assert counters["rejected_requests"] == 0 and counters["discarded_slots"] == 0
    assert all(ring.last_error is None for ring in live.rings)
    assert "prompt_blend" in live.onsets.onsets_ms() and live.onsets.class_onsets(Propagation.STEP)


@pytest.fixture
def served(turbo):
    """The tiny turbo folder playing in real time, with the page on a free port."""
    rig = stereo_rig(turbo, sink=NullSink(OutputConfig(48_000, channels=2)))
    with serving(rig, WebConfig(port=0)) as served:
        yield served


def test_the_pages_audio_frames_carry_two_channels(served):
    live, web = served

    async def first_audio():
        async with connect(f"ws://127.0.0.1:{web.port}/ws", max_size=None) as ws:
            while True:
                msg = await asyncio.wait_for(ws.recv(), 30)
                if isinstance(msg, bytes) and msg[:1] == b"A":
                    return msg

    frame = asyncio.run(first_audio())
    rate, channels = struct.unpack("<IH", frame[1:7])
    payload = len(frame) - 7
    assert (rate, channels) == (48_000, 2) and payload > 0 and payload % (channels * 2) == 0  # int16 frames


def test_the_page_plays_stereo(served, pulse_null_sink):
    from playwright.sync_api import sync_playwright

    live, web = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, env=pulse_null_sink["env"],
                                     args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"])
        tab = browser.new_page()
        errors = []
        tab.on("pageerror", lambda err: errors.append(str(err)))
        tab.goto(web.url)
        tab.wait_for_function("window.demon.audio.stats.played > 48000", timeout=30_000)  # a second of frames
        assert tab.evaluate("window.demon.audio.stats.channels") == 2
        assert tab.evaluate("window.demon.audio.context.sampleRate") == 48_000
        browser.close()
    assert not errors, errors


def test_stereo_plays_through_portaudio_into_the_pulseaudio_null_sink(turbo, pulse_null_sink):
    sink = SoundDeviceSink(OutputConfig(48_000, device="pulse", channels=2, buffer_seconds=4.0))
    live = stereo_rig(turbo, sink=sink).engine
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(3.0)
    stop.set()
    thread.join(timeout=10)
    assert sink.device_rate == 48_000 and sink._stream.channels == 2
    assert sink.played > 4 and live.counters.blocks > 2


def test_live_music_plays_a_complete_folder_from_the_command_line(acestep_folders, tmp_path):
    lyrics, out = tmp_path / "lyrics.txt", tmp_path / "counters.json"
    lyrics.write_text("[verse]\nla la la\n")
    base = [sys.executable, "-m", "demon", "live", "music", "--model", str(acestep_folders("turbo")), "--null-audio",
            "--osc-port", "-1"]
    proc = subprocess.run([*base, "--run-seconds", "4", "--loop-seconds", "2", "--steps", "2", "--lyrics", str(lyrics),
                           "--key", "A minor", "--time-signature", "4", "--counters-out", str(out)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    counters = json.loads(out.read_text())
    assert counters["device_rate"] == 48_000 and counters["blocks"] > 0 and counters["completions"] >= 1
    assert counters["discarded_slots"] == 0 and counters["rejected_requests"] == 0
    proc = subprocess.run([*base, "--run-seconds", "1", "--guidance", "3"], capture_output=True, text=True, timeout=180)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "turbo" in lines[0], proc.stderr



def test_live_repaint_redraws_bars_of_the_playing_loop_and_keeps_the_rest(turbo):
    """Bars [0.5, 1) of a one-bar loop (120 bpm: frames 25..50 at 25 frames/s) are drawn
    again from the loop playing; the rest of it is kept exactly, and the window equals a
    render's repaint of the same source."""
    rig = stereo_rig(turbo, prompt_a=SHORT, depth=1, bpm=120.0)
    live, session = rig.engine, rig.session
    offered = []
    offer = live.player.offer
    live.player.offer = lambda loop: (offered.append(loop), offer(loop))[1]
    play(live, 0.5)
    assert offered
    state = session.update({"task": "repaint", "repaint_from": 0.5})  # to the loop's end
    while not any(loop.request_version >= state.version for loop in offered):
        live.step()
    at = next(i for i, loop in enumerate(offered) if loop.request_version >= state.version)
    source, repaint = (turbo.codec.normalize(offered[i].latents[0].T) for i in (at - 1, at))
    assert torch.equal(repaint[:25], source[:25])  # kept: the source itself
    assert (repaint[25:] - source[25:]).abs().max() > 1e-3  # redrawn
    counters = live.live_counters()
    assert counters["rejected_requests"] == 0 and counters["discarded_slots"] == 0
    # the window, as `demon render music --task repaint` draws it from that source
    inputs = TaskInputs(MusicTask.REPAINT, 50, 2.0, Source(turbo.codec.denormalize(source), 2.0), (25, 50))
    params = {k: state[k] for k in ("seed", "steps", "shift", "guidance", "solver", "strength")}
    job = MusicJob(SHORT, None, params, meta=SongMeta(bpm=120), task=MusicTask.REPAINT)
    drawn = generate_latents(turbo, job, inputs=inputs)
    assert (drawn[25:] - repaint[25:]).abs().max() < 1e-5


@pytest.mark.parametrize("change, field", [
    ({"task": "repaint", "repaint_from": 1.5, "repaint_to": 2.0}, "past the loop's end"),  # a one-bar loop
    ({"task": "repaint", "repaint_from": 0.5, "repaint_to": 0.25}, "is empty"),
    ({"task": "repaint", "strength": 0.5}, "starts from noise"),
    ({"task": "cover", "strength": 0.5}, "starts from noise"),
])
def test_live_repaint_refuses_a_bad_window_and_plays_on(turbo, change, field):
    rig = stereo_rig(turbo, depth=1, bpm=120.0)
    live, session = rig.engine, rig.session
    play(live, 0.5)
    done = live.counters.completions
    session.update(change)
    play(live, 0.5)
    assert live.ring.counters.rejected > 0 and field in str(live.ring.last_error)
    session.update({"task": "text2music", "strength": 1.0})
    play(live, 0.5)
    assert live.counters.completions > done and live.live_counters()["discarded_slots"] == 0


def test_live_repaint_needs_a_loop_or_a_source(turbo):
    live = stereo_rig(turbo, depth=1, bpm=120.0, task="repaint", repaint_from=0.5).engine
    play(live, 0.3)
    assert "needs a source" in str(live.ring.last_error) and live.counters.completions == 0


def test_live_cover_of_the_playing_loop_equals_a_rendered_cover(turbo):
    rig = stereo_rig(turbo, prompt_a=SHORT, depth=1)
    live, session = rig.engine, rig.session
    offered = []
    offer = live.player.offer
    live.player.offer = lambda loop: (offered.append(loop), offer(loop))[1]
    play(live, 0.5)
    state = session.update({"task": "cover", "prompt_a": LONG})
    while not any(loop.request_version >= state.version for loop in offered):
        live.step()
    at = next(i for i, loop in enumerate(offered) if loop.request_version >= state.version)
    source, cover = (turbo.codec.normalize(offered[i].latents[0].T) for i in (at - 1, at))
    assert live.live_counters()["rejected_requests"] == 0
    inputs = TaskInputs(MusicTask.COVER, 50, 2.0, Source(turbo.codec.denormalize(source), 2.0))
    params = {k: state[k] for k in ("seed", "steps", "shift", "guidance", "solver", "strength")}
    drawn = generate_latents(turbo, MusicJob(LONG, None, params, meta=SongMeta(bpm=120), task=MusicTask.COVER),
                             inputs=inputs)
    assert (drawn - cover).abs().max() < 1e-5


def test_live_cover_needs_the_audio_tokenizer(acestep_folders, tmp_path):
    from acestep_folder import without_audio_tokens

    models = load_music_models(without_audio_tokens(shutil.copytree(acestep_folders("turbo"), tmp_path / "model")))
    live = stereo_rig(models, depth=1).engine
    play(live, 0.5)
    live.store.update({"task": "cover"})
    play(live, 0.5)
    assert "audio_tokenizer" in str(live.ring.last_error)
