"""The fuzzed surfaces: every way a stranger's bytes reach the engine, each with the
Hypothesis strategy that makes its inputs and the check that feeds one in.

A check passes when the surface either accepts the input or answers with a clear
error (InputError for controls, PipelineError for files and model folders) or a
counted drop; anything else raises `Crash`. An input still running after HANG_S is a
hang (each is fed on a worker thread, so a hang is reported, not waited out). Used by
tests/test_fuzz.py (small budget; a larger one behind -m slow) and by bench/fuzz.py,
which runs the same checks against a live engine and times its ticks.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tomli_w
from hypothesis import strategies as st

from controls.midi import Binding, MidiControl, load_mapping
from controls.osc import OscControl
from controls.presets import load_preset
from controls.rate_limit import RateLimits
from controls.session import ControlSession
from engine import InputError
from pipelines.errors import PipelineError

HANG_S = 5.0
CLEAR = (InputError, PipelineError)  # a clear, one-line error: the input is refused, nothing else happens


class Crash(AssertionError):
    """A surface let an input through as something other than a clear error or a drop."""


@dataclass
class Surface:
    name: str
    strategy: st.SearchStrategy
    feed: Callable[[Any], None]  # raises a CLEAR error to refuse; anything else is a crash
    examples: int = 100  # the default test run's budget; the slow run and the bench take more

    def check(self, value: Any) -> float:
        """Feed one input on a worker thread; the seconds it took. Raises Crash for a crash,
        or for a hang: an input still running after HANG_S (its thread is left behind)."""
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                self.feed(value)
                outcome.append(None)
            except CLEAR:
                outcome.append(None)
            except Exception as err:  # noqa: BLE001 - exactly what the fuzzer hunts
                outcome.append(err)

        began = time.perf_counter()
        worker = threading.Thread(target=run, name=f"fuzz-{self.name}", daemon=True)
        worker.start()
        worker.join(HANG_S)
        took = time.perf_counter() - began
        if worker.is_alive():
            raise Crash(f"{self.name}: one input still running after {HANG_S:g} s (a hang)")
        if outcome and outcome[0] is not None:
            err = outcome[0]
            raise Crash(f"{self.name}: {type(err).__name__}: {err}"[:400]) from err
        return took


# ---- building blocks ------------------------------------------------------------------

def _mutations() -> st.SearchStrategy:
    """Edits of a valid file: truncate it, flip bytes, zero a stretch, splice in junk."""
    frac = st.floats(0.0, 1.0)
    return st.lists(st.one_of(
        st.tuples(st.just("truncate"), frac),
        st.tuples(st.just("flip"), frac, st.integers(1, 255)),
        st.tuples(st.just("zero"), frac, st.integers(1, 64)),
        st.tuples(st.just("insert"), frac, st.binary(min_size=1, max_size=32)),
    ), min_size=1, max_size=4)


def mutate(data: bytes, edits: list[tuple]) -> bytes:
    out = bytearray(data)
    for edit in edits:
        at = int(edit[1] * len(out))
        if edit[0] == "truncate":
            del out[at:]
        elif edit[0] == "flip" and at < len(out):
            out[at] ^= edit[2]
        elif edit[0] == "zero":
            out[at:at + edit[2]] = bytes(len(out[at:at + edit[2]]))
        elif edit[0] == "insert":
            out[at:at] = edit[2]
    return bytes(out)


def _json_values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                        max_leaves=20)


# ---- control surfaces ------------------------------------------------------------------

def osc_packets(names: list[str]) -> st.SearchStrategy:
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    addresses = st.one_of(st.sampled_from([f"/demon/{n}" for n in names] + [
        "/demon/state", "/demon/counters", "/demon/learn", "/demon/preset/save", "/demon/preset/load",
        "/demon/trigger/retake", "/demon/trigger/nope", "/demon/", "/", "/other"]), st.text(max_size=30))
    args = st.lists(st.one_of(st.integers(-2**31, 2**31 - 1), st.floats(width=32), st.text(max_size=20),
                              st.binary(max_size=20), st.booleans(), st.none()), max_size=6)

    @st.composite
    def message(draw) -> bytes:
        address = draw(addresses)
        b = OscMessageBuilder(address)
        for a in draw(args):
            b.add_arg(a)
        try:
            return b.build().dgram
        except Exception:  # noqa: BLE001 - python-osc will not build it (several types): the raw text stands in
            return address.encode()

    @st.composite
    def bundle(draw) -> bytes:
        ahead = draw(st.one_of(st.just(0.0), st.floats(-1e8, 1e8), st.floats(0.0, 3.0)))  # NTP time ends in 2036
        b = OscBundleBuilder(time.time() + ahead)
        for m in draw(st.lists(message(), min_size=1, max_size=4)):
            try:
                b.add_content(OscMessage(m))
            except Exception:  # noqa: BLE001 - a raw address stand-in does not parse: leave it out
                pass
        return b.build().dgram

    valid = st.one_of(message(), bundle())
    return st.one_of(valid, st.binary(max_size=200),
                     st.tuples(valid, _mutations()).map(lambda vm: mutate(*vm)))


def ws_messages(names: list[str]) -> st.SearchStrategy:
    kinds = st.sampled_from(["set", "trigger", "hello", "preset_save", "preset_load", "dance"])
    structured = st.fixed_dictionaries({"type": kinds}, optional={
        "name": st.one_of(st.sampled_from(names), _json_values()), "value": _json_values()}).map(json.dumps)
    return st.one_of(structured, _json_values().map(json.dumps), st.text(max_size=200), st.binary(max_size=200),
                     st.sampled_from(['{"type": "set", "name": "guidance", "value": NaN}',
                                      '{"type": "set", "name": "guidance", "value": Infinity}',
                                      '{"type": "set", "name": "guidance", "value": 1e999}', "[" * 5000]))


def midi_bytes() -> st.SearchStrategy:
    """Raw MIDI streams: running status, SysEx (closed, open, interrupted), NRPN
    sequences cut anywhere, and noise."""
    status = st.integers(0x80, 0xFF)
    data = st.integers(0, 0x7F)
    nrpn = st.tuples(st.integers(0, 15), data, data, data, data, st.integers(0, 8)).map(
        lambda t: bytes([0xB0 | t[0], 99, t[1], 98, t[2], 6, t[3], 38, t[4]])[:t[5]])
    running = st.tuples(st.integers(0xB0, 0xBF), st.lists(data, max_size=12)).map(lambda t: bytes([t[0], *t[1]]))
    sysex = st.tuples(st.lists(data, max_size=20), st.sampled_from([b"\xf7", b"", b"\x90\x40"])).map(
        lambda t: b"\xf0" + bytes(t[0]) + t[1])
    pieces = st.one_of(nrpn, running, sysex, st.lists(st.one_of(status, data), max_size=8).map(bytes),
                       st.binary(max_size=16))
    return st.lists(pieces, max_size=10).map(b"".join)


# ---- files -----------------------------------------------------------------------------

def toml_documents(names: list[str], table: str) -> st.SearchStrategy:
    """Text that is sometimes TOML of the right shape, sometimes nearly, sometimes not."""
    keys = st.one_of(st.sampled_from(names), st.text(min_size=1, max_size=12))
    toml_scalar = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), st.text(max_size=30),
                            st.lists(st.floats(allow_nan=False), max_size=4))
    shaped = st.dictionaries(keys, toml_scalar, max_size=8).map(lambda d: tomli_w.dumps({table: d}))
    bindings = st.lists(st.fixed_dictionaries({}, optional={
        "kind": st.one_of(st.sampled_from(["cc", "cc14", "nrpn", "note"]), st.text(max_size=6)),
        "channel": st.one_of(st.integers(-5, 40), st.text(max_size=4)),
        "number": st.one_of(st.integers(-5, 20_000), st.floats(allow_nan=False)),
        "target": st.one_of(st.sampled_from(names + ["trigger/retake", "trigger/nope"]), st.text(max_size=10))}),
        max_size=6).map(lambda b: tomli_w.dumps({"device": "fuzz", "bindings": b}))
    text = st.one_of(shaped, bindings, st.text(max_size=300))
    return st.one_of(text, st.tuples(text, _mutations()).map(lambda tm: mutate(tm[0].encode(), tm[1])))


def _seed_media(folder: Path) -> dict[str, bytes]:
    from pipelines.audio_io import write_audio
    from pipelines.video_io import VideoWriter

    seeds = {}
    tone = (0.3 * np.sin(np.arange(4000) * 0.1)).astype(np.float32)
    for suffix in (".wav", ".flac"):
        seeds[suffix] = write_audio(folder / f"seed{suffix}", tone, 16_000).read_bytes()
    rng = np.random.default_rng(0)
    for suffix in (".mp4", ".mkv"):
        writer = VideoWriter(folder / f"seed{suffix}", 32, 24, Fraction(25))
        for i in range(4):
            writer.write(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), i / 25)
        seeds[suffix] = writer.close().read_bytes()
    # absurd dimensions: a raw YUV4MPEG stream that claims a frame far larger than its bytes
    seeds[".y4m"] = b"YUV4MPEG2 W65536 H65536 F25:1 C420jpeg\nFRAME\n" + bytes(64)
    return seeds


def media_files(kinds: list[str]) -> st.SearchStrategy:
    return st.tuples(st.sampled_from(kinds), st.one_of(st.just([]), _mutations(), st.just([("truncate", 0.0)])))


# ---- model folders --------------------------------------------------------------------

def safetensors_header(data: bytes) -> tuple[dict, int]:
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + size]), 8 + size


def with_header(data: bytes, header: dict) -> bytes:
    _, start = safetensors_header(data)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[start:]


def folder_edits() -> st.SearchStrategy:
    """One edit of one file of a model folder: a JSON value replaced, a file truncated or
    its bytes flipped, a tensor's dtype or shape in a safetensors header changed."""
    return st.one_of(
        st.tuples(st.just("json"), st.integers(0, 10_000), _json_values()),
        st.tuples(st.just("bytes"), st.integers(0, 10_000), _mutations()),
        st.tuples(st.just("dtype"), st.integers(0, 10_000), st.integers(0, 10_000),
                  st.sampled_from(["F16", "BF16", "F64", "I64", "I8", "BOOL", "U8", "XX"])),
        st.tuples(st.just("shape"), st.integers(0, 10_000), st.integers(0, 10_000),
                  st.lists(st.integers(0, 70), max_size=4)),
    )


def edit_folder(folder: Path, edit: tuple) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    jsons = [p for p in files if p.suffix == ".json"]
    tensors = [p for p in files if p.suffix == ".safetensors"]
    kind = edit[0]
    if kind == "json" and jsons:
        path = jsons[edit[1] % len(jsons)]
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and doc:
            key = sorted(doc)[edit[1] % len(doc)]
            doc[key] = edit[2]
        else:
            doc = edit[2]
        path.write_text(json.dumps(doc))
    elif kind == "bytes":
        path = files[edit[1] % len(files)]
        path.write_bytes(mutate(path.read_bytes(), edit[2]))
    elif kind in ("dtype", "shape") and tensors:
        path = tensors[edit[1] % len(tensors)]
        data = path.read_bytes()
        header, _ = safetensors_header(data)
        names = sorted(k for k in header if k != "__metadata__")
        if names:
            entry = header[names[edit[2] % len(names)]]
            entry["dtype" if kind == "dtype" else "shape"] = edit[3]
            path.write_bytes(with_header(data, header))


# ---- the rig that holds every surface ---------------------------------------------------------

@dataclass
class FuzzRig:
    """Every fuzzed surface, wired to one control session (a live engine's, or a fresh one).
    Model folders are optional: {"video_sr": folder, "voice": folder, "music": folder}."""

    session: ControlSession
    folders: dict[str, Path] = field(default_factory=dict)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="demon-fuzz-")))

    def __post_init__(self):
        from web.server import WebConfig, WebServer

        names = [p.name for p in self.session.registry]
        self.names = names
        unlimited = RateLimits(1e9, 1e9)
        self.osc = OscControl(self.session, lambda: {}, self.work / "presets", limits=unlimited, total=unlimited,
                              schedule=lambda _ahead, apply, *args: apply(*args))  # bundles timed ahead: at once
        self.web = WebServer(self.session, WebConfig(port=0, presets=self.work / "presets"))
        numeric = [p.name for p in self.session.registry if p.type.name in ("FLOAT", "INT", "BOOL", "CHOICE")]
        self.midi = MidiControl(self.session, [Binding("cc", 0, 1, numeric[0]), Binding("cc14", 0, 2, numeric[1]),
                                               Binding("nrpn", 0, 300, numeric[2]), Binding("note", 0, 60, numeric[3])])
        self.media = _seed_media(self.work)

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    # ---- feeds ----

    def feed_osc(self, packet: bytes) -> None:
        before = self.osc.counters.packets
        self.osc.datagram_received(packet, ("127.0.0.1", 9))
        if self.osc.counters.packets != before + 1:
            raise AssertionError("an OSC packet went uncounted")

    def feed_ws(self, message: str | bytes) -> None:
        reply = self.web.handle(message)
        if reply is not None and reply.get("type") not in ("ack", "error", "hello", "presets"):
            raise AssertionError(f"unexpected reply {reply!r:.200}")
        json.dumps(reply)  # a reply always goes back as JSON

    def feed_midi(self, data: bytes) -> None:
        import mido

        parser = mido.Parser()
        parser.feed(data)
        for msg in parser:
            self.midi.feed(msg)

    def feed_preset(self, text: str | bytes) -> None:
        path = self.work / "fuzz-preset.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        values = load_preset(path, self.session.registry)
        self.session.update(values, clamp=False)  # what a recall does with them

    def feed_midi_map(self, text: str | bytes) -> None:
        path = self.work / "fuzz-map.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        control = MidiControl(self.session)
        for binding in load_mapping(path):
            control.bind(binding)  # what `demon live --midi-map` does with them

    def feed_media(self, kind_edits: tuple[str, list]) -> None:
        from pipelines.audio_io import read_audio
        from pipelines.video_io import VideoReader

        kind, edits = kind_edits
        path = self.work / f"fuzz{kind}"
        path.write_bytes(mutate(self.media[kind], edits))
        if kind in (".wav", ".flac"):
            read_audio(path, 16_000, max_seconds=5.0)
            read_audio(path, 16_000, max_seconds=5.0, channels=2)
        else:
            with VideoReader(path) as reader:
                for _ in reader:
                    pass

    def feed_folder(self, kind: str, edit: tuple) -> None:
        with ExitStack() as stack:
            copy = Path(tempfile.mkdtemp(prefix="folder-", dir=self.work))
            stack.callback(shutil.rmtree, copy, True)
            shutil.copytree(self.folders[kind], copy, dirs_exist_ok=True, symlinks=True)
            edit_folder(copy, edit)
            LOADERS[kind](copy)

    # ---- the surfaces ----

    def surfaces(self, folders: bool = True) -> list[Surface]:
        out = [
            Surface("osc", osc_packets(self.names), self.feed_osc),
            Surface("websocket", ws_messages(self.names), self.feed_ws),
            Surface("midi", midi_bytes(), self.feed_midi),
            Surface("preset_toml", toml_documents(self.names, "params"), self.feed_preset),
            Surface("midi_map_toml", toml_documents(self.names, "bindings"), self.feed_midi_map),
            Surface("media", media_files(sorted(self.media)), self.feed_media, examples=40),
        ]
        if folders:
            for kind in sorted(self.folders):
                out.append(Surface(f"model_folder_{kind}", folder_edits(),
                                   lambda edit, kind=kind: self.feed_folder(kind, edit), examples=15))
        return out


def _load_video_sr(folder: Path) -> None:
    from pipelines.video_sr.checkpoint import load_video_sr

    for scale in (2, 4):
        load_video_sr(folder, scale)


def _load_voice(folder: Path) -> None:
    from pipelines.voice.checkpoint import load_codec, load_voice

    load_codec(folder)
    load_voice(folder)


def _load_music(folder: Path) -> None:
    from pipelines.music.models import load_music_models

    load_music_models(folder)


LOADERS: dict[str, Callable[[Path], None]] = {"video_sr": _load_video_sr, "voice": _load_voice, "music": _load_music}
