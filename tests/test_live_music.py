"""The live music engine: loops swap in at the playhead, live changes never discard
work, each parameter class is heard with the onset it promises, bad requests are counted."""

import math

import numpy as np
import pytest
import torch

from demon.rigs import music_rig
from engine.windowed import DecoderGeometry
from pipelines.audio_out import NullSink, OutputConfig
from pipelines.music.models import load_music_models
from pipelines.music.player import Loop, LoopPlayer, Swap

HOP = 4


def frame_decoder(z):
    """Sample = the frame's first channel, repeated: easy to reason about, local (halo 0)."""
    return z[:, :1].repeat_interleave(HOP, dim=-1)


def const_loop(value, frames, version=0):
    return Loop(torch.full((1, 2, frames), float(value)), version, version)


def test_player_swaps_at_the_playhead_with_an_equal_power_crossfade():
    player = LoopPlayer(frame_decoder, DecoderGeometry(HOP, 0))
    player.offer(const_loop(1.0, 10))
    first, started = player.render(12, 8)
    assert started is not None and np.allclose(first, 1.0)
    player.offer(const_loop(2.0, 10, 1))
    fade, started = player.render(8, 8)
    t = np.arange(8) / 8
    expected = np.cos(0.5 * math.pi * t) * 1.0 + np.sin(0.5 * math.pi * t) * 2.0
    assert started.final_version == 1 and np.allclose(fade, expected, atol=1e-6)
    after, started = player.render(6, 8)
    assert started is None and np.allclose(after, 2.0)  # the new loop at the decoder's level
    assert player.position == 26
    assert player.last_swap == Swap(at=12, fade=8, request_id=-1)  # where the page draws it fading in


def test_a_splice_crossfades_from_the_written_audio_and_changes_nothing_until_committed():
    player = LoopPlayer(frame_decoder, DecoderGeometry(HOP, 0))
    player.offer(const_loop(1.0, 10))
    written, _ = player.render(20, 8)
    player.offer(const_loop(2.0, 10, 1))
    assert player.splice(16, np.ones(6, np.float32), 8) is None  # its fade would run past the written audio
    samples, loop = player.splice(12, written[12:16], 8)
    t = np.arange(4) / 4
    assert np.allclose(samples[:4], np.cos(0.5 * math.pi * t) * 1.0 + np.sin(0.5 * math.pi * t) * 2.0, atol=1e-6)
    assert np.allclose(samples[4:], 2.0) and loop.final_version == 1
    assert player.position == 20 and player.current.final_version == 0 and not player.swap_waiting()
    player.restore(loop)  # the output could not take it: it waits again
    assert player.swap_waiting()
    samples, loop = player.splice(12, written[12:16], 8)
    player.commit(12, 8, loop, fade=4)
    assert player.position == 20 and player.current is loop and player.last_swap == Swap(12, 4, -1)
    after, started = player.render(4, 8)
    assert started is None and np.allclose(after, 2.0)


def test_no_splice_while_a_crossfade_is_being_rendered():
    player = LoopPlayer(frame_decoder, DecoderGeometry(HOP, 0))
    player.offer(const_loop(1.0, 10))
    written, _ = player.render(12, 8)
    player.offer(const_loop(2.0, 10, 1))
    player.render(4, 8)  # halfway through the fade
    player.offer(const_loop(3.0, 10, 2))
    assert not player.swap_waiting() and player.splice(8, written[8:12], 8) is None


def test_a_new_loop_enters_in_time_on_the_shared_timeline():
    player = LoopPlayer(frame_decoder, DecoderGeometry(HOP, 0))
    ramp = Loop(torch.arange(12.0).repeat(1, 2, 1), 0, 0)  # sample value = frame index
    player.offer(const_loop(0.0, 5))
    player.render(30, 1)  # playhead at 30 samples
    player.offer(ramp)
    out, _ = player.render(1, 1)  # a 1-sample fade: all new loop
    out, _ = player.render(8, 1)
    assert out.tolist() == [(31 + i) // HOP % 12 for i in range(8)]


def test_player_cost_per_block_does_not_grow_with_the_loop():
    seen = []

    def counting(z):
        seen.append(z.shape[-1])
        return frame_decoder(z)

    for frames in (50, 5000):
        player = LoopPlayer(counting, DecoderGeometry(HOP, 3))
        player.offer(const_loop(1.0, frames))
        player.render(32, 1)
    assert seen[0] == seen[1] == 32 // HOP + 2 * 3


@pytest.fixture
def rig(tiny_models):
    models = load_music_models(tiny_models)
    sink = NullSink(OutputConfig(models.codec.sample_rate, buffer_seconds=4.0))  # consumed by hand below
    return music_rig(models, sink, initial={"loop_seconds": 2.0, "steps": 4, "depth": 4, "seed": 5})


@pytest.fixture
def live(rig):
    return rig.engine


@pytest.fixture
def session(rig):
    return rig.session


def play(live, seconds):
    """Let the engine work while `seconds` of audio are consumed, as the device would."""
    block = np.zeros((400, 1), np.float32)
    for _ in range(int(seconds * live.sink.device_rate / 400)):
        for _ in range(3):
            live.step()
        live.sink.pull(block)


def test_depth_and_loop_length_changes_keep_every_admitted_slot(live, session):
    play(live, 2.0)
    assert live.ring.occupied >= 3  # (one row may have just finished this tick)
    old_ring = live.ring
    session.update({"depth": 1, "loop_seconds": 3.0})  # both at once, ring full
    play(live, 3.0)
    counters = live.live_counters()
    assert counters["discarded_slots"] == 0
    assert old_ring.occupied == 0 and old_ring.counters.completed == old_ring.counters.admitted
    assert live.ring is not old_ring and live.ring.frames == 75 and live.player.current.frames == 75
    assert counters["rings"] == 2 and counters["completions"] > 4


def test_sweeping_the_loop_length_keeps_few_rings_alive_and_discards_nothing(live, session):
    alive = []
    for seconds in (2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 2.5, 2.1):  # a performer sweeping the loop length
        session.set("loop_seconds", seconds)
        play(live, 0.4)
        counters, totals = live.live_counters(), live.rings.totals()
        assert counters["discarded_slots"] == 0 and counters["completions"] == totals.completed
        assert totals.admitted == totals.completed + live.rings.occupied
        alive.append(len(live.rings))
    assert live.live_counters()["rings"] == 8 and max(alive) <= 3  # old lengths drain, then are retired


def test_onsets_follow_the_propagation_classes(live, session):
    play(live, 1.0)
    before = live.store.snapshot.version
    session.update({"guidance": 2.5, "steps": 6, "gain": 0.7})
    version = live.store.snapshot.version
    assert version == before + 1 and live.store.snapshot["guidance"] == 2.5  # StepState at once
    play(live, 4.0)
    onsets = live.onsets.onsets_ms()
    assert set(onsets) >= {"guidance", "steps", "gain"}
    # output: the next block; step: the first loop that took a step with it; request: a loop born after it
    assert onsets["gain"] <= onsets["guidance"] <= onsets["steps"]
    admission = live.ring.trace.first_admission_at(version)
    assert admission is not None and admission.steps == 6


def test_a_bad_live_request_is_counted_and_the_loop_keeps_playing(live, session):
    session.set("strength", 0.4)  # nothing plays yet, no source: requests are refused
    play(live, 0.5)
    assert live.live_counters()["rejected_requests"] > 0 and live.player.current is None
    session.set("strength", 1.0)
    play(live, 1.5)
    assert live.player.current is not None
    session.set("strength", 0.4)  # now the playing loop is the source
    rejected = live.live_counters()["rejected_requests"]
    play(live, 1.5)
    assert live.live_counters()["rejected_requests"] == rejected
    assert live.ring.trace.first_admission_at(live.store.snapshot.version) is not None


def test_retake_draws_a_new_seed(live, session):
    seed = live.store.snapshot["seed"]
    session.trigger("retake")
    assert live.store.snapshot["seed"] != seed and session.counters.triggers == 1


def test_bar_aligned_loops_lock_to_the_link_timeline(live, session):
    pytest.importorskip("aalink", reason="the optional 'link' extra (aalink) is not installed")
    from controls.link import LinkClock

    session.update({"loop_bars": 1, "bpm": 120.0})  # one bar = 2 s = 50 frames
    clock = LinkClock(session, live.tempo_param, network=False).start()  # no sockets: Link alone
    try:
        live.link = clock
        sr = live.sample_rate
        render, splice, drift = live.player.render, live.player.splice, []

        def on_link(at):  # where a block starts, against Link's beat for its play time
            ahead = (at - live.player.position + live.sink.ring.available()) / sr + live.sink.latency_s
            drift.append(abs(at - clock.position(ahead, sr)) / sr)

        def watched(n, crossfade):
            on_link(live.player.position)
            return render(n, crossfade)

        def watched_splice(at, old, n):
            on_link(at)
            return splice(at, old, n)

        live.player.render, live.player.splice = watched, watched_splice
        play(live, 2.0)
        assert len(drift) > 3 and max(drift) < 0.025  # every block, spliced or not, starts on Link's timeline
        assert live.counters.link_jumps >= 1
        assert live.player.current.frames * live.codec.geometry.hop == 2 * sr  # so loop starts fall on bars
        clock.link.tempo = 100.0  # a peer changes the tempo
        play(live, 0.5)
        assert live.store.snapshot["bpm"] == pytest.approx(100.0)
        session.set("bpm", 130.0)  # and a local change reaches Link
        play(live, 0.5)
        assert float(clock.link.tempo) == pytest.approx(130.0)
    finally:
        clock.stop()


def test_a_new_loop_is_heard_ahead_of_the_audio_already_buffered(live):
    """A completion is spliced in a small margin after the device's playhead: rendered
    first, then written over the old loop's buffered audio from there on, so the new
    loop is heard after the margin, not after the lead."""
    stream = [np.zeros(0, np.float32)]  # the output's timeline as the feeder wrote it (rates agree here)
    write, replace = live.sink.write, live.sink.replace
    live.sink.write = lambda samples: stream.append(samples.copy()) or write(samples)

    def replacing(start, samples):
        if not replace(start, samples):
            return False
        stream[:] = [np.concatenate(stream)[:start], samples.copy()]  # ring index = stream index here
        return True

    live.sink.replace = replacing
    play(live, 2.0)
    block = np.zeros((live.sink.blocksize, 1), np.float32)
    while live.sink.lead_s() < live.splice_ahead_s() + 1.0:  # a lead well past the splice's margin
        live._feed()
    lead = live.sink.lead_s()
    assert live.player.current is not None and lead >= 1.0
    old = np.concatenate(stream)[live.sink.ring.played :]  # the old loop, buffered and not yet played
    swaps = live.counters.swaps_spliced
    live.player.offer(Loop(live.player.current.latents.flip(-1), 99, 99))  # another loop
    assert live.step() == "fed"
    assert live.counters.swaps_spliced == swaps + 1 and live.player.current.request_version == 99
    assert live.counters.splices_late == 0  # nothing consumed the output meanwhile
    heard = []
    while live.sink.ring.available() >= len(block):
        live.sink.pull(block)
        heard.append(block[:, 0].copy())
    heard = np.concatenate(heard)
    n = min(len(heard), len(old))
    first_new = int(np.argmax(np.abs(heard[:n] - old[:n]) > 1e-6))  # where the crossfade begins
    assert np.array_equal(heard[:first_new], old[:first_new])  # the audio before the splice is untouched
    margin = live.splice_ahead_s() + 3 * len(block) / live.sink.device_rate
    assert 0 < first_new and first_new / live.sink.device_rate <= margin < lead


def test_a_splice_the_device_overtakes_is_thrown_away_and_tried_again(live):
    """A splice render that ends after the device reached its start writes nothing: the
    output keeps playing the old loop without a gap, and the loop is spliced next time."""
    play(live, 2.0)
    while live.sink.lead_s() < live.splice_ahead_s() + 1.0:
        live._feed()
    before = live.sink.ring.written
    real = live.player.splice
    block = np.zeros((live.sink.blocksize, 1), np.float32)

    def slow_splice(at, old, n):
        out = real(at, old, n)
        for _ in range(int(live.splice_ahead_s() * live.sink.device_rate / len(block)) + 3):
            live.sink.pull(block)  # the device plays on past the splice point meanwhile
        return out

    live.player.splice = slow_splice
    live.player.offer(Loop(live.player.current.latents.flip(-1), 99, 99))
    starved, late = live.sink.starved, live.counters.splices_late
    assert live._splice()
    assert live.counters.splices_late == late + 1 and live.sink.ring.written == before
    assert live.player.swap_waiting() and live.player.current.request_version != 99
    live.player.splice = real
    assert live._splice() and live.player.current.request_version == 99
    assert live.sink.starved == starved
