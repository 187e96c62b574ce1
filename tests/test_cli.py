"""The command line: the demo runs end to end; bad input is one line and exit 2."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from demon.cli import main


def test_demo_runs_live_changes_and_keeps_parity(tmp_path, capsys):
    out = tmp_path / "latents.safetensors"
    rc = main(["demo", "--requests", "4", "--seconds", "1", "--depth", "2", "--steps", "2", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "completions 4" in text
    assert "guidance change used from tick 4" in text
    assert "bit-identical True" in text
    latents = load_file(str(out))
    assert len(latents) == 4
    assert all(t.shape == (25, 64) for t in latents.values())


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["demo", "--depth", "0"], "--depth: 0 is outside 1..16"),
        (["demo", "--guidance", "nan"], "--guidance: expected a finite number"),
        (["demo", "--steps", "many"], "invalid int value"),
        (["demo", "--seconds", "-1"], "--seconds"),
        (["demo", "--seconds", "1e9"], "--seconds"),
        (["demo", "--out", "/no/such/folder/x.safetensors"], "does not exist"),
        (["demo", "--solver", "heun"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, fragment):
    proc = subprocess.run([sys.executable, "-m", "demon", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demon: error:")
    assert fragment in lines[0]
    assert proc.stdout == ""


def test_params_lists_the_registry(capsys):
    assert main(["params", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any('"name": "guidance"' in line and '"propagation": "step"' in line for line in lines)


@pytest.mark.parametrize("pipeline,own", [("music", "loop_seconds"), ("video-sr", "steady"), ("voice", "chunk_ms")])
def test_params_lists_each_pipelines_registry(capsys, pipeline, own):
    assert main(["params", "--pipeline", pipeline, "--json"]) == 0
    names = [json.loads(line)["name"] for line in capsys.readouterr().out.strip().splitlines()]
    assert own in names and "guidance" in names


def test_live_music_runs_headless_and_reports_counters(tiny_models, tmp_path):
    out = tmp_path / "counters.json"
    proc = subprocess.run([sys.executable, "-m", "demon", "live", "music", "--model", str(tiny_models), "--null-audio",
                           "--run-seconds", "3", "--loop-seconds", "2", "--steps", "2", "--osc-port", "0",
                           "--counters-out", str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    counters = json.loads(out.read_text())
    assert counters["completions"] >= 1 and counters["discarded_slots"] == 0 and counters["blocks"] > 0
    assert counters["osc"]["malformed"] == 0 and "OSC on udp://127.0.0.1:" in proc.stderr


def test_a_render_that_hits_a_file_size_limit_says_so_and_leaves_no_file(tiny_models, tmp_path):
    """A full disk, simulated with RLIMIT_FSIZE: one line naming the output, no file that looks complete."""
    import resource

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "demon", "render", "music", "--model", str(tiny_models),
                           "--prompt", "synth pop, 120 bpm, C major", "--seconds", "4", "--steps", "2",
                           "--out", str(out / "song.wav")], preexec_fn=small_files, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"cannot write {out / 'song.wav'}: File too large" in proc.stderr
    assert os.listdir(out) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_live_music_cleanly_with_its_presets_intact(sig, tiny_models, tmp_path):
    """Ctrl-C or a service manager's SIGTERM: exit 0, the counters written, a preset
    saved during the run still complete."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    from controls.presets import load_preset
    from pipelines.music.live_params import LIVE_MUSIC_PARAMS

    out, presets = tmp_path / "counters.json", tmp_path / "presets"
    presets.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "demon", "live", "music", "--model", str(tiny_models),
                             "--null-audio", "--loop-seconds", "2", "--steps", "2", "--osc-port", "0",
                             "--presets", str(presets), "--counters-out", str(out), "--run-seconds", "300"],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            # as a shell starts it in the foreground: a background job inherits SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        port = None
        for line in proc.stderr:  # "OSC on udp://127.0.0.1:PORT ..."
            if "OSC on udp://127.0.0.1:" in line:
                port = int(line.split("127.0.0.1:")[1].split()[0])
                break
        assert port is not None, "no OSC line"
        message = OscMessageBuilder("/demon/preset/save")
        message.add_arg("kept")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.build().dgram, ("127.0.0.1", port))
        deadline = time.monotonic() + 30
        while not (presets / "kept.toml").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest[-2000:]
    assert json.loads(out.read_text())["discarded_slots"] == 0
    assert load_preset(presets / "kept.toml", LIVE_MUSIC_PARAMS)["loop_seconds"] == 2.0


@pytest.mark.parametrize("argv,needle", [
    (["--blocksize", "3"], "--blocksize"),
    (["--latency", "soon"], "--latency"),
    (["--guidance", "nan"], "--guidance"),
    (["--solver", "rk4"], "--solver"),
    (["--osc-port", "70000"], "--osc-port"),
    (["--learn", "gain"], "--learn"),
    (["--source", "/nonexistent.wav"], "--source"),
])
def test_live_music_bad_flags_are_one_line_errors(argv, needle, tiny_models):
    proc = subprocess.run([sys.executable, "-m", "demon", "live", "music", "--model", str(tiny_models), "--null-audio",
                           "--osc-port", "-1", "--run-seconds", "1", *argv], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_bad_preset_name_is_a_one_line_error(tiny_models):
    proc = subprocess.run([sys.executable, "-m", "demon", "live", "music", "--model", str(tiny_models), "--null-audio",
                           "--osc-port", "-1", "--run-seconds", "1", "--preset", "../etc/passwd"],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("demon: error: --preset:"), proc.stderr


def test_preset_then_flags_make_the_initial_values(tmp_path):
    from controls.presets import PresetFolder
    from demon.catalog import LIVE_REGISTRIES, PARAM_FLAGS
    from demon.cli import build_parser
    from demon.frontends import initial_values
    from engine import StateStore

    registry = LIVE_REGISTRIES["music"]
    PresetFolder(tmp_path).save("verse", StateStore(registry, {"gain": 0.25, "bpm": 100.0}).snapshot)
    args = build_parser().parse_args(["live", "music", "--presets", str(tmp_path), "--preset", "verse", "--bpm", "90"])
    initial = initial_values(args, registry, PARAM_FLAGS["music"])
    assert initial["gain"] == 0.25 and initial["bpm"] == 90.0


@pytest.mark.parametrize("buffered", [True, False])
def test_a_closed_stdout_ends_quietly(buffered):
    """`demon params | head`: the reader goes away first; no traceback, the SIGPIPE status."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "demon", "params"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdout.close()  # before the child writes a line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == ""
