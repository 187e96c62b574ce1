"""MIDI control: bytes as a controller sends them, through a port object, onto the session."""

import os
import time

import mido
import pytest

from controls.midi import Binding, MidiControl, MidiInput, load_mapping, mapping_path, save_mapping
from controls.session import ControlSession
from engine import InputError, StateStore
from pipelines.music.live_params import LIVE_MUSIC_PARAMS


class BytePort:
    """A mido port object fed raw MIDI bytes, standing in for a device where rtmidi has no virtual ports."""

    def __init__(self, callback):
        self.callback = callback
        self.parser = mido.Parser()
        self.closed = False

    def send_bytes(self, data: bytes):
        if self.closed:
            raise OSError("port closed")
        self.parser.feed(data)
        for msg in self.parser:
            self.callback(msg)

    def close(self):
        self.closed = True


@pytest.fixture
def rig():
    session = ControlSession(StateStore(LIVE_MUSIC_PARAMS), {"retake": lambda: session.set("seed", 7)})
    midi = MidiControl(session)
    ports = []
    present = {"names": ["nanoKONTROL2"]}

    def opener(name, callback):
        ports.append(BytePort(callback))
        return ports[-1]

    port_in = MidiInput(midi, "nanoKONTROL2", opener=opener, names=lambda: list(present["names"]), poll_s=0.02).start()
    yield session, midi, ports, present
    port_in.stop()


def cc(ch, num, value):
    return bytes([0xB0 | ch, num, value])


def test_seven_bit_cc_maps_onto_the_registry_range(rig):
    session, midi, ports, _ = rig
    midi.bind(Binding("cc", 0, 21, "guidance"))
    midi.bind(Binding("cc", 0, 22, "steps"))
    midi.bind(Binding("cc", 0, 23, "solver"))
    ports[-1].send_bytes(cc(0, 21, 127) + cc(0, 22, 0) + cc(0, 23, 127))
    state = session.store.snapshot
    assert (state["guidance"], state["steps"], state["solver"]) == (20.0, 1, "sde")
    ports[-1].send_bytes(cc(0, 21, 64))
    assert session.store.snapshot["guidance"] == pytest.approx(20.0 * 64 / 127)


def test_fourteen_bit_pairs_and_nrpn_give_fine_values(rig):
    session, midi, ports, _ = rig
    midi.bind(Binding("cc14", 2, 1, "prompt_blend"))
    ports[-1].send_bytes(cc(2, 1, 64) + cc(2, 33, 1))  # MSB then LSB: (64 << 7 | 1) / 16383
    assert session.store.snapshot["prompt_blend"] == pytest.approx((64 * 128 + 1) / 16383)
    midi.bind(Binding("nrpn", 0, 300, "velocity_scale"))
    ports[-1].send_bytes(cc(0, 99, 2) + cc(0, 98, 44) + cc(0, 6, 127) + cc(0, 38, 127))  # NRPN 2*128+44 = 300
    assert session.store.snapshot["velocity_scale"] == pytest.approx(2.0)


def test_note_triggers_and_learn(rig):
    session, midi, ports, _ = rig
    midi.learn("trigger/retake")
    ports[-1].send_bytes(bytes([0x90, 60, 100]))  # learned, not applied
    assert midi.counters.learned == 1 and session.store.snapshot["seed"] == 0
    ports[-1].send_bytes(bytes([0x90, 60, 100]))
    assert session.store.snapshot["seed"] == 7
    midi.learn("gain")
    ports[-1].send_bytes(cc(0, 7, 10) + cc(0, 39, 5))  # MSB learned; its LSB upgrades the binding to 14-bit
    assert [b for b in midi.bindings if b.target == "gain"] == [Binding("cc14", 0, 7, "gain")]
    ports[-1].send_bytes(cc(0, 7, 127) + cc(0, 39, 127))
    assert session.store.snapshot["gain"] == pytest.approx(2.0)
    with pytest.raises(InputError):
        midi.learn("prompt_a")  # text cannot follow a fader


def test_unmapped_and_odd_messages_are_counted(rig):
    session, midi, ports, _ = rig
    ports[-1].send_bytes(cc(0, 90, 3) + bytes([0xE0, 0, 64]) + bytes([0xF8]))  # unmapped CC, pitch bend, clock
    assert midi.counters.unmapped == 3 and session.store.snapshot.version == 0


def test_mappings_round_trip_per_device(tmp_path, rig):
    session, midi, ports, _ = rig
    midi.bind(Binding("cc", 0, 21, "guidance"))
    midi.bind(Binding("note", 9, 36, "trigger/retake"))
    path = save_mapping(mapping_path(tmp_path, "nanoKONTROL2 MIDI 1"), "nanoKONTROL2 MIDI 1", midi.bindings)
    assert path.name == "nanoKONTROL2_MIDI_1.toml"
    assert set(load_mapping(path)) == set(midi.bindings)
    (tmp_path / "bad.toml").write_text("bindings = [ {kind = 'cc'} ]")
    with pytest.raises(InputError, match="midi-map"):
        load_mapping(tmp_path / "bad.toml")


def test_an_unplugged_device_is_counted_and_comes_back(rig):
    session, midi, ports, present = rig
    midi.bind(Binding("cc", 0, 21, "guidance"))
    present["names"] = []  # unplugged
    deadline = time.time() + 2
    while midi.counters.disconnects == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert midi.counters.disconnects == 1 and ports[-1].closed
    present["names"] = ["nanoKONTROL2"]
    while midi.counters.reconnects == 0 and time.time() < deadline + 2:
        time.sleep(0.01)
    assert midi.counters.reconnects == 1 and len(ports) == 2
    ports[-1].send_bytes(cc(0, 21, 127))
    assert session.store.snapshot["guidance"] == 20.0


@pytest.mark.skipif(not os.path.exists("/dev/snd/seq"), reason="no ALSA sequencer (/dev/snd/seq): rtmidi cannot make virtual ports here")
def test_rtmidi_virtual_port_end_to_end():
    session = ControlSession(StateStore(LIVE_MUSIC_PARAMS))
    midi = MidiControl(session, [Binding("cc", 0, 21, "guidance")])
    with mido.open_output("demon-test-out", virtual=True) as out:
        port_in = MidiInput(midi, next(n for n in mido.get_input_names() if "demon-test-out" in n)).start()
        out.send(mido.Message("control_change", channel=0, control=21, value=127))
        deadline = time.time() + 2
        while session.store.snapshot["guidance"] != 20.0 and time.time() < deadline:
            time.sleep(0.01)
        port_in.stop()
    assert session.store.snapshot["guidance"] == 20.0


def test_a_device_that_comes_back_but_will_not_open_is_counted_and_said_once(capsys):
    midi = MidiControl(ControlSession(StateStore(LIVE_MUSIC_PARAMS)))
    ports, present, refusals = [], {"names": ["pad"]}, {"left": 3}

    def opener(name, callback):
        if ports and refusals["left"]:  # the first open works; the first three reopens do not
            refusals["left"] -= 1
            raise OSError("device busy")
        ports.append(BytePort(callback))
        return ports[-1]

    port_in = MidiInput(midi, "pad", opener=opener, names=lambda: list(present["names"]), poll_s=0.02).start()
    present["names"] = []
    deadline = time.time() + 2
    while midi.counters.disconnects == 0 and time.time() < deadline:
        time.sleep(0.01)
    present["names"] = ["pad"]
    while midi.counters.reconnects == 0 and time.time() < deadline + 2:
        time.sleep(0.01)
    port_in.stop()
    assert midi.counters.reconnect_failures == 3 and midi.counters.reconnects == 1
    assert capsys.readouterr().err.count("does not open (device busy)") == 1
