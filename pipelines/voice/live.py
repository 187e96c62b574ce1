"""Live voice conversion: the microphone through the stream to the speakers.

A worker thread takes whole 10 ms frames from the duplex input ring as they arrive,
pushes them through StreamingVC and queues the converted audio for the output
callback. The caller hands it the StateStore (a VOICE_PARAMS registry) its controls
write, so OSC and the page steer chunk size, strength, steps and the rest live.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from engine import StateStore

from ..audio_duplex import _Duplex
from ..ring_streams import slot_view
from .checkpoint import VoiceModels
from .codec import HOP, SAMPLE_RATE
from .stream import StreamingVC


class LiveVoice:
    def __init__(self, models: VoiceModels, speaker: torch.Tensor, duplex: _Duplex, store: StateStore, *,
                 target: str = ""):
        self.store = store
        self.target = target  # what the page names as the voice converted toward (the reference's name)
        self.triggers = {"reset_counters": self.reset_counters}
        self.duplex = duplex
        self.vc = StreamingVC(models, speaker, self.store)
        self.samples_in = 0
        self.samples_out = 0
        self.dropped_out = 0  # converted samples the output ring had no room for
        self.input_db = -math.inf  # the microphone's level: RMS of each block, held and falling 20 dB/s

    def reset_counters(self) -> None:
        self.samples_in = self.samples_out = self.dropped_out = 0

    def run(self, stop: threading.Event) -> None:
        block = self.duplex.device_rate * HOP // SAMPLE_RATE  # one 10 ms frame at the device's rate
        self.duplex.start()
        try:
            while not stop.is_set():
                samples = self.duplex.read(block)
                if samples is None:
                    if self.duplex.finished:
                        break
                    stop.wait(0.002)
                    continue
                self.samples_in += samples.size
                self._meter(samples, samples.size / SAMPLE_RATE)  # read() gives the engine's rate
                out = self.vc.push(samples)
                if out.size:
                    written = self.duplex.write(out)
                    self.samples_out += written
                    self.dropped_out += out.size - written
        finally:
            self.duplex.stop()

    def _meter(self, samples: np.ndarray, seconds: float) -> None:
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
        level = 20 * math.log10(rms) if rms > 1e-10 else -math.inf
        self.input_db = max(level, self.input_db - 20.0 * seconds)

    def live_counters(self) -> dict[str, Any]:
        latency = self.vc.latency()
        device_in, device_out = self.duplex.device_latency_s
        counters = asdict(self.vc.counters)
        counters.update(
            latency_ms=round(latency["latency_ms"], 1), algorithmic_ms=latency["algorithmic_ms"],
            compute_ms=round(latency["compute_ms"], 2), vad_compute_ms=round(latency["vad_compute_ms"], 3),
            device_ms=round(1000 * (device_in + device_out), 1),
            chunk_ms=latency["chunk_ms"], overlap_ms=latency["overlap_ms"], samples_in=self.samples_in, samples_out=self.samples_out,
            input_overflows=self.duplex.overflows, device_flags=self.duplex.underflows,
            device_rate=self.duplex.device_rate,  # differs from 16 kHz where the devices' default was taken
            output_starved=self.duplex.output.starved, dropped_out=self.dropped_out,
        )
        return counters

    def view(self) -> dict[str, Any]:
        """What a front-end draws beside the counters (which hold the latency budget): the ring,
        the input level and the target."""
        return {"pipeline": "voice",
                "ring": {"depth": self.store.snapshot["depth"], "slots": slot_view(self.vc.rings),
                         "completed": self.vc.rings.totals().completed},
                "input_db": round(self.input_db, 1) if math.isfinite(self.input_db) else None, "target": self.target}

    def status_line(self) -> str:
        c = self.live_counters()
        return (f"latency {c['latency_ms']} ms (+ device {c['device_ms']} ms) | chunk {c['chunk_ms']} ms | "
                f"chunks {c['chunks']} gated {c['gated']} (no speech {c['no_speech']}) | overflows {c['input_overflows']} "
                f"starved {c['output_starved']} | watchdog {c['watchdog_grows']}")
