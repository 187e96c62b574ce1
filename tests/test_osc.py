"""OSC over real UDP on 127.0.0.1: parameters reach StepState, queries answer, and
every kind of bad packet is counted and dropped while the server keeps serving."""

import asyncio
import json
import socket
import time
from functools import partial

import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from controls.osc import OscControl, OscServer
from controls.server_thread import ServerThread
from controls.session import ControlSession
from engine import InputError, StateStore
from pipelines.music.live_params import LIVE_MUSIC_PARAMS

from conftest import wait_for as conftest_wait_for


@pytest.fixture
def osc(tmp_path):
    session = ControlSession(StateStore(LIVE_MUSIC_PARAMS), {"retake": lambda: session.set("seed", 42)})
    control = OscControl(session, lambda: {"ticks": 7}, tmp_path)
    server = OscServer(control, "127.0.0.1", 0).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    yield session, control, server, sock
    sock.close()
    server.stop()


def send(sock, server, address, *args):
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    sock.sendto(b.build().dgram, ("127.0.0.1", server.port))


wait_for = partial(conftest_wait_for, timeout=2.0, interval=0.01)  # OSC over loopback answers within 2 s


def ask(sock, server, address):
    from pythonosc.osc_message import OscMessage

    send(sock, server, address)
    return OscMessage(sock.recv(65536))


def test_parameters_reach_stepstate_and_queries_answer(osc):
    session, control, server, sock = osc
    client = SimpleUDPClient("127.0.0.1", server.port)
    client.send_message("/demon/guidance", 3.5)
    client.send_message("/demon/steps", 12)
    client.send_message("/demon/prompt_b", "synth pop, 128 bpm, C major")
    client.send_message("/demon/source_blend", [0.0, 0.5, 1.0])
    assert wait_for(lambda: control.counters.applied == 4)
    state = session.store.snapshot
    assert (state["guidance"], state["steps"], state["prompt_b"]) == (3.5, 12, "synth pop, 128 bpm, C major")
    assert state["source_blend"] == (0.0, 0.5, 1.0)
    reply = ask(sock, server, "/demon/state")
    assert reply.address == "/demon/state" and json.loads(reply.params[0])["guidance"] == 3.5
    reply = ask(sock, server, "/demon/counters")
    assert json.loads(reply.params[0]) == {"ticks": 7}
    send(sock, server, "/demon/trigger/retake")
    assert wait_for(lambda: session.store.snapshot["seed"] == 42)


def test_out_of_range_values_are_clamped_and_counted(osc):
    session, control, server, sock = osc
    send(sock, server, "/demon/guidance", 99.0)
    assert wait_for(lambda: session.counters.clamped == 1)
    assert session.store.snapshot["guidance"] == 20.0


@pytest.mark.parametrize("address,args,counter", [
    ("/demon/guidance", ["loud"], "bad_args"),  # wrong type
    ("/demon/guidance", [float("nan")], "bad_args"),
    ("/demon/guidance", [1.0, 2.0], "bad_args"),  # wrong count
    ("/demon/solver", ["rk4"], "bad_args"),
    ("/demon/trigger/explode", [], "bad_args"),
    ("/demon/nonexistent", [1.0], "unknown_address"),
    ("/other/guidance", [1.0], "unknown_address"),
])
def test_bad_messages_are_counted_and_the_server_keeps_serving(osc, address, args, counter):
    session, control, server, sock = osc
    version = session.store.snapshot.version
    send(sock, server, address, *args)
    assert wait_for(lambda: getattr(control.counters, counter) == 1)
    assert session.store.snapshot.version == version  # nothing half-applied
    send(sock, server, "/demon/guidance", 2.0)
    assert wait_for(lambda: session.store.snapshot["guidance"] == 2.0)


def test_malformed_packets_are_counted(osc):
    session, control, server, sock = osc
    for junk in (b"", b"\x00\x01garbage", b"/demon/guidance\x00\x00\x00\x00,f\x00\x00\x00", b"#bundle\x00\xff"):
        sock.sendto(junk, ("127.0.0.1", server.port))
    assert wait_for(lambda: control.counters.malformed == 4)
    send(sock, server, "/demon/gain", 0.5)
    assert wait_for(lambda: session.store.snapshot["gain"] == 0.5)


def bundle(at, address, value):
    b = OscBundleBuilder(at)
    m = OscMessageBuilder(address)
    m.add_arg(value)
    b.add_content(m.build())
    return b.build().dgram


def test_far_future_timetags_are_dropped_and_near_ones_scheduled(osc):
    session, control, server, sock = osc
    sock.sendto(bundle(time.time() + 3600, "/demon/guidance", 7.0), ("127.0.0.1", server.port))
    sock.sendto(bundle(time.time() + 0.3, "/demon/velocity_scale", 1.5), ("127.0.0.1", server.port))
    send(sock, server, "/demon/gain", 0.25)  # not stalled behind either bundle
    assert wait_for(lambda: session.store.snapshot["gain"] == 0.25, timeout=0.25)
    assert session.store.snapshot["velocity_scale"] == 1.0  # not yet due
    assert wait_for(lambda: session.store.snapshot["velocity_scale"] == 1.5)
    assert control.counters.future_dropped == 1 and session.store.snapshot["guidance"] == 1.0


def test_presets_save_and_load_over_osc(osc, tmp_path):
    session, control, server, sock = osc
    send(sock, server, "/demon/guidance", 4.0)
    send(sock, server, "/demon/preset/save", "verse")
    assert wait_for(lambda: (tmp_path / "verse.toml").is_file())
    send(sock, server, "/demon/guidance", 1.0)
    send(sock, server, "/demon/preset/load", "verse")
    assert wait_for(lambda: session.store.snapshot["guidance"] == 4.0)
    send(sock, server, "/demon/preset/load", "../etc/passwd")
    assert wait_for(lambda: control.counters.bad_args == 1)


def test_request_parameters_reach_the_next_request(tiny_models):
    """Over OSC into the live engine: a request-class change is in the next admitted request."""
    from demon.rigs import music_rig
    from pipelines.audio_out import NullSink, OutputConfig
    from pipelines.music.models import load_music_models

    models = load_music_models(tiny_models)
    rig = music_rig(models, NullSink(OutputConfig(16_000)), initial={"loop_seconds": 2.0, "steps": 3, "depth": 2})
    live = rig.engine
    server = OscServer(OscControl(rig.session, rig.live_counters), "127.0.0.1", 0).start()
    try:
        SimpleUDPClient("127.0.0.1", server.port).send_message("/demon/steps", 5)
        assert wait_for(lambda: live.store.snapshot["steps"] == 5)
        version = live.store.snapshot.version
        for _ in range(20):
            live._tick()
        admission = live.ring.trace.first_admission_at(version)
        assert admission is not None and admission.steps == 5
        first_tick = live.ring.trace.first_tick_at(version)
        assert first_tick is not None and first_tick.tick <= admission.tick  # step-class: the very next tick
    finally:
        server.stop()


class _BrokenBind(ServerThread):
    async def bind(self):
        raise ValueError("no such interface")


class _StuckBind(ServerThread):
    start_timeout_s = 0.3

    async def bind(self):
        await asyncio.sleep(3600)


def test_a_server_that_cannot_bind_says_why_at_once():
    began = time.monotonic()
    with pytest.raises(InputError, match="cannot listen on 127.0.0.1:0: ValueError: no such interface"):
        _BrokenBind("broken", "osc-port", "127.0.0.1", 0).start()
    assert time.monotonic() - began < 5.0  # not the start timeout


def test_a_server_that_never_binds_is_an_error_not_a_silent_start():
    stuck = _StuckBind("stuck", "osc-port", "127.0.0.1", 0)
    with pytest.raises(InputError, match="not listening after 0.3 s"):
        stuck.start()
    stuck._thread.join(timeout=2.0)
    assert not stuck._thread.is_alive()  # the abandoned bind was cancelled
