"""Audio files through PyAV: read anything FFmpeg reads, write wav or flac atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.files import atomic_path

from .errors import MediaFileError

WRITERS = {".wav": ("wav", "pcm_s16le", "s16"), ".flac": ("flac", "flac", "s16")}
MAX_READ_SECONDS = 3600.0


class AudioFileError(MediaFileError):
    """An audio file that cannot be read or written, with the reason."""


def read_audio(path: Path | str, sample_rate: int, max_seconds: float = MAX_READ_SECONDS,
               channels: int = 1) -> np.ndarray:
    """Float32 samples at `sample_rate` from any file PyAV can decode: (samples,) mixed
    down to mono by default, or (channels, samples) for a model of `channels` (1 or 2).
    A mono file is heard at full level on every channel; a file of more channels is
    mixed by FFmpeg's standard matrix."""
    import av

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if channels not in LAYOUTS:
        raise AudioFileError(f"{path}: cannot read as {channels} channels (1 or 2)")
    if channels == 1:
        return _decode(path, av.AudioResampler(format="flt", layout="mono", rate=sample_rate), sample_rate,
                       max_seconds).reshape(-1)
    if _file_channels(path) == 1:
        mono = _decode(path, av.AudioResampler(format="flt", layout="mono", rate=sample_rate), sample_rate,
                       max_seconds)
        return np.repeat(mono, channels, axis=0)
    resampler = av.AudioResampler(format="fltp", layout=LAYOUTS[channels], rate=sample_rate)
    return _decode(path, resampler, sample_rate, max_seconds)


def _file_channels(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{path}: no audio stream")
            return int(container.streams.audio[0].codec_context.channels)
    except av.FFmpegError as err:
        raise AudioFileError(f"{path}: cannot decode audio ({err})") from None


def _decode(path: Path, resampler, sample_rate: int, max_seconds: float) -> np.ndarray:
    """(planes, samples) through `resampler`: one plane for packed or mono output."""
    import av

    chunks: list[np.ndarray] = []
    limit = int(max_seconds * sample_rate)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
                if sum(c.shape[-1] for c in chunks) > limit:
                    raise AudioFileError(f"{path}: longer than {max_seconds:g} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except av.FFmpegError as err:
        raise AudioFileError(f"{path}: cannot decode audio ({err})") from None
    audio = np.concatenate(chunks, axis=-1) if chunks else np.zeros((1, 0), np.float32)
    if audio.size == 0:
        raise AudioFileError(f"{path}: no audio samples")
    if not np.isfinite(audio).all():
        raise AudioFileError(f"{path}: audio contains NaN or inf")
    return audio.astype(np.float32)


LAYOUTS = {1: "mono", 2: "stereo"}


def write_audio(path: Path | str, audio: np.ndarray, sample_rate: int) -> Path:
    """Write samples as wav or flac: (samples,) mono, or (channels, samples) for one or
    two channels. The file appears under its name only when complete: it is written to
    a temporary name in the same folder, then renamed."""
    import av

    path = Path(path)
    try:
        container_format, codec, sample_format = WRITERS[path.suffix.lower()]
    except KeyError:
        raise AudioFileError(f"{path}: unsupported output format (use {', '.join(WRITERS)})") from None
    if not path.parent.is_dir():
        raise AudioFileError(f"{path}: folder {path.parent} does not exist")
    audio = np.asarray(audio, dtype=np.float32)
    planes = audio[None] if audio.ndim == 1 else audio
    if planes.ndim != 2 or planes.shape[0] not in LAYOUTS:
        raise AudioFileError(f"{path}: expected (samples,) or (1 or 2 channels, samples), got shape {audio.shape}")
    layout = LAYOUTS[planes.shape[0]]
    # packed s16: the channels interleaved frame by frame
    pcm = (np.clip(planes, -1.0, 1.0) * 32767.0).astype(np.int16).T.reshape(-1)
    step = planes.shape[0]
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        block = 4096 * step
        for i in range(0, pcm.size, block):
            frame = av.AudioFrame.from_ndarray(pcm[None, i : i + block], format=sample_format, layout=layout)
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
