"""A private PulseAudio server with one null sink, for the audio tests and the soak.

Its own runtime folder and HOME, so it never touches a user's server; PortAudio reaches
it through ALSA's pulse plugin with PULSE_SERVER set. Ready means a client is served,
not that the socket exists: a server that has never run (a fresh machine) may still be
setting up, and a loaded one is slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

SINK = "demon_null"
NULL_SINK_ARGS = (f"sink_name={SINK}", "rate=48000")  # module-null-sink's, at start and when a test reloads it


def _answers(server: str, env: dict) -> bool:
    try:
        return subprocess.run(["pactl", f"--server={server}", "info"], env=env, capture_output=True,
                              timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        return False
    except FileNotFoundError:
        raise RuntimeError("pactl is missing: run scripts/setup.sh (pulseaudio-utils)") from None


@contextmanager
def null_sink_server(runtime: Path, ready_timeout: float = 30.0):
    """Yields {"sink", "server", "env"}; the server stops on exit."""
    if shutil.which("pulseaudio") is None:
        raise RuntimeError("pulseaudio is missing: run scripts/setup.sh (it installs the audio test packages)")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime)}
    proc = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--log-target=stderr",
         f"--load=module-null-sink {' '.join(NULL_SINK_ARGS)}", "--load=module-native-protocol-unix auth-anonymous=1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = runtime / "pulse" / "native"
    server = f"unix:{socket}"
    deadline = time.monotonic() + ready_timeout
    try:
        while not (socket.exists() and _answers(server, env)):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"pulseaudio did not start serving clients within {ready_timeout:g} s")
            time.sleep(0.05)
        yield {"sink": SINK, "server": server, "env": {**env, "PULSE_SERVER": server}}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
