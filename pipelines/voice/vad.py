"""Is this speech? Silero VAD (MIT), the ONNX model its wheel ships, run on ONNX Runtime.

Periodicity does not tell speech from music (a held note is as periodic as a vowel):
`demon render voice` once took a music clip as its target reference and converted toward
it without a word. Silero's detector is a small recurrent network trained on speech
against music, noise and silence. It reads 16 kHz audio in windows of 512 samples (32 ms),
each with the 64 samples before it as context, and carries a recurrent state from window
to window, so it streams: one window of work per window of audio, nothing looked ahead.

The model is read from the installed `silero-vad` wheel (`silero_vad/data/silero_vad.onnx`)
without importing the package, which would import its torch code.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelFolderError

SAMPLE_RATE = 16_000
WINDOW = 512  # samples the model reads per call (32 ms)
CONTEXT = 64  # samples before each window that it reads with it
STATE = (2, 1, 128)  # its recurrent state, carried from window to window
THRESHOLD = 0.5  # speech probability at which a window counts as speech (Silero's default)


def model_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    path = Path(spec.origin).parent / "data" / "silero_vad.onnx" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ModelFolderError("the voice-activity detector needs the silero-vad package (pip install silero-vad); "
                               "its ONNX model was not found")
    return path


@lru_cache(maxsize=1)
def _session():
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1  # a window is tiny: threads cost more than they give
    return ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])


class SpeechDetector:
    """Speech probability per 32 ms window of a 16 kHz mono stream, fed in pieces of any size."""

    def __init__(self) -> None:
        self._session = _session()
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros(STATE, np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)  # samples short of a whole window

    def push(self, audio: np.ndarray) -> np.ndarray:
        """The probabilities of the windows `audio` completes (in order; none while a window fills)."""
        x = np.concatenate([self._pending, np.asarray(audio, np.float32).reshape(-1)])
        whole = x.size // WINDOW * WINDOW
        self._pending = x[whole:]
        out = np.empty(whole // WINDOW, np.float32)
        for i in range(out.size):
            window = x[i * WINDOW : (i + 1) * WINDOW]
            inputs = np.concatenate([self._context, window])[None]
            prob, self._state = self._session.run(None, {"input": inputs, "state": self._state, "sr": self._sr})
            self._context = window[-CONTEXT:]
            out[i] = prob[0, 0]
        return out


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """One probability per whole 32 ms window of a 16 kHz clip, from a fresh state."""
    return SpeechDetector().push(audio)


def speech_seconds(audio: np.ndarray) -> float:
    """How much of a 16 kHz clip the detector hears as speech."""
    return float((speech_probabilities(audio) >= THRESHOLD).sum() * WINDOW / SAMPLE_RATE)
