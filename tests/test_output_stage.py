"""Output-class controls at the device: the gain of the block leaving, not of the decode."""

from __future__ import annotations

import threading
import time

import numpy as np

from demon.rigs import music_rig
from engine import Propagation
from pipelines.audio_out import NullSink, OutputConfig
from pipelines.music.models import load_music_models
from pipelines.output_stage import OutputStage


def test_a_gain_change_ramps_across_one_block_then_holds():
    stage = OutputStage(frames=4)
    state = {"gain": 1.0, "version": 0}
    stage.source = lambda: (state["gain"], state["version"])
    block = np.ones((4, 2), np.float32)
    stage.apply(block)
    assert np.array_equal(block, np.ones((4, 2)))  # unity: untouched
    first = stage.heard
    assert first is not None and first[0] == 0
    state.update(gain=0.5, version=1)
    block = np.ones((4, 2), np.float32)
    stage.apply(block)
    assert np.allclose(block[:, 0], [0.875, 0.75, 0.625, 0.5]) and np.array_equal(block[:, 0], block[:, 1])
    assert stage.heard[0] == 1 and stage.heard[1] >= first[1]  # stamped when its first block left
    stamps, seen = stage.heard_since(0)
    assert [v for v, _ in stamps] == [0, 1] and seen == 2 and stage.heard_since(seen) == ([], 2)
    block = np.ones((8, 1), np.float32)  # a longer device block: the ramp grows, the gain holds
    stage.apply(block)
    assert np.allclose(block, 0.5)


def test_without_a_source_the_stage_passes_blocks_through():
    block = np.full((3, 1), 0.25, np.float32)
    OutputStage(frames=3).apply(block)
    assert np.array_equal(block, np.full((3, 1), 0.25))


def test_a_live_gain_change_is_heard_one_device_block_later_not_a_decode_lead_later(tiny_models):
    """A gain of 0 silences the device within a couple of blocks, while the audio already
    decoded ahead of it still holds the old level."""
    models = load_music_models(tiny_models)
    sr = models.codec.sample_rate
    sink = NullSink(OutputConfig(sr, buffer_seconds=4.0, blocksize=256))
    rig = music_rig(models, sink, initial={"loop_seconds": 2.0, "steps": 2, "depth": 1, "seed": 3})
    live = rig.engine
    pulled: list[tuple[float, float]] = []  # (time, peak) of each block the device took
    pull = sink.pull

    def watched(block):
        full = pull(block)
        pulled.append((time.perf_counter(), float(np.abs(block).max())))
        return full

    sink.pull = watched
    stop = threading.Event()
    engine = threading.Thread(target=live.run, args=(stop,), daemon=True)
    engine.start()
    try:
        deadline = time.monotonic() + 60
        while not any(peak > 0 for _, peak in pulled[-4:]):  # the first loop is playing
            assert time.monotonic() < deadline, "no audio reached the device"
            time.sleep(0.05)
        time.sleep(0.3)
        lead = sink.lead_s()
        buffered_peak = float(np.abs(sink.ring._buf).max())
        changed_at = time.perf_counter()
        rig.session.set("gain", 0.0)
        time.sleep(0.5)
    finally:
        stop.set()
        engine.join(timeout=10)
    block_s = 256 / sr
    after = [peak for at, peak in pulled if at > changed_at + 2 * block_s + 0.02]
    assert lead > 2 * block_s and buffered_peak > 0  # decoded audio waits ahead, at its level
    assert after and max(after) == 0.0  # yet the device went silent within two blocks
    onsets = live.onsets.class_onsets(Propagation.OUTPUT)
    assert onsets and onsets[-1] <= 2 * block_s + sink.latency_s + 0.05
