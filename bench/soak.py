"""Soak: `demon live music` for N minutes under a storm of live controls; prints JSON lines.

    python bench/soak.py --minutes 60            # into a private PulseAudio null sink
    python bench/soak.py --minutes 3 --null-audio

Random control changes arrive at `--rate` Hz in all from OSC over UDP, a websocket
client and a MIDI port at once (a virtual rtmidi port where the ALSA sequencer exists;
elsewhere one line says MIDI is left out), and every few seconds a preset is recalled
and the depth or the loop length changes. The engine runs as its own process, as a
performer starts it; the soak reads its counters over OSC and its RSS, open file
descriptors and threads from /proc.

One JSON line per figure: underflows, starved blocks, deadline misses, tick p50 / p99
(the worst of the 256-tick windows polled through the run) / max, completions, RSS at
start and end with the growth in percent and the slope over the run's second half, file descriptors and threads at start and
end, and errors (bad control messages the engine counted, and its exit status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository on sys.path)
from common import ROOT, emit

sys.path.insert(0, str(ROOT / "tests"))  # the private PulseAudio server the audio tests use
from pulse_server import null_sink_server  # noqa: E402

from pythonosc.osc_message_builder import OscMessageBuilder  # noqa: E402

STEP_KNOBS = ("prompt_blend", "velocity_scale")  # the turbo house folder has its guidance in its weights
PRESETS = {"calm": {"prompt_blend": 0.1, "gain": 0.8}, "busy": {"prompt_blend": 0.9, "gain": 1.0}}
START_TIMEOUT_S = 180.0  # models loaded and the OSC server answering
SETTLE_S = 10.0  # after start-up, before the storm: the first loops played


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_figures(pid: int) -> dict[str, float] | None:
    """RSS, threads and open file descriptors of a live process (None once it has exited)."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024, "threads": int(status["Threads"]),
                "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    except (OSError, KeyError):  # gone, or a zombie without memory
        return None


class Osc:
    """Sends OSC to the engine and reads its replies (the counters) on one UDP socket."""

    def __init__(self, port: int):
        self.addr = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.lock = threading.Lock()

    def send(self, address: str, *args) -> None:
        builder = OscMessageBuilder(address)
        for arg in args:
            builder.add_arg(arg)
        with self.lock:
            self.sock.sendto(builder.build().dgram, self.addr)

    def counters(self) -> dict | None:
        from pythonosc.osc_message import OscMessage

        self.send("/demon/counters")
        try:
            while True:
                data, _ = self.sock.recvfrom(65536)
                message = OscMessage(data)
                if message.address == "/demon/counters":
                    return json.loads(message.params[0])
        except (TimeoutError, socket.timeout):
            return None


def random_value(rng: random.Random, name: str) -> float:
    return rng.uniform(0.5, 1.5) if name == "velocity_scale" else rng.random()


def osc_storm(osc: Osc, rate: float, stop: threading.Event, sent: dict) -> None:
    rng = random.Random(1)
    while not stop.wait(1.0 / rate):
        name = rng.choice(STEP_KNOBS + ("gain", "noise_injection"))
        if name == "noise_injection":
            osc.send(f"/demon/{name}", *[rng.random() for _ in range(4)])
        else:
            osc.send(f"/demon/{name}", random_value(rng, name) if name != "gain" else rng.uniform(0.5, 1.2))
        sent["osc"] += 1


def websocket_storm(url: str, rate: float, stop: threading.Event, sent: dict, errors: list) -> None:
    from websockets.asyncio.client import connect

    async def run() -> None:
        rng = random.Random(2)
        async with connect(url, open_timeout=30, max_size=None) as ws:
            async def drain() -> None:  # the page's state and audio frames, read as a page would
                async for _ in ws:
                    pass

            reader = asyncio.create_task(drain())
            shape_every, shape_changes, next_shape = 5.0, 0, time.monotonic() + 5.0
            while not stop.is_set():
                if time.monotonic() >= next_shape:  # every 5 s: the depth or the loop length, in turn
                    shape_changes += 1
                    next_shape += shape_every
                    msg = ({"type": "set", "name": "depth", "value": rng.choice((1, 2, 4))} if shape_changes % 2 else
                           {"type": "set", "name": "loop_seconds", "value": rng.choice((10.0, 15.0, 20.0))})
                else:
                    name = rng.choice(STEP_KNOBS)
                    msg = {"type": "set", "name": name, "value": random_value(rng, name)}
                await ws.send(json.dumps(msg))
                sent["websocket"] += 1
                await asyncio.sleep(1.0 / rate)
            reader.cancel()

    try:
        asyncio.run(run())
    except Exception as err:  # noqa: BLE001 - reported as a figure, the soak goes on
        errors.append(f"websocket: {err}")


def midi_storm(port_name: str, rate: float, stop: threading.Event, sent: dict, errors: list) -> None:
    import mido

    rng = random.Random(3)
    try:
        with mido.open_output(port_name, virtual=True) as out:
            while not stop.wait(1.0 / rate):
                out.send(mido.Message("control_change", control=rng.randrange(1, 32), value=rng.randrange(128)))
                sent["midi"] += 1
    except Exception as err:  # noqa: BLE001
        errors.append(f"midi: {err}")


def late_slope(samples: list[tuple[float, float]]) -> float:
    """RSS growth over the second half of the run (least squares), MB per minute: a leak
    keeps climbing there, an allocator settling in does not."""
    late = samples[len(samples) // 2:]
    if len(late) < 3:
        return float("nan")
    t = [x for x, _ in late]
    y = [v for _, v in late]
    tm, ym = sum(t) / len(t), sum(y) / len(y)
    return 60 * sum((a - tm) * (b - ym) for a, b in zip(t, y)) / sum((a - tm) ** 2 for a in t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--null-audio", action="store_true", help="the clock-paced null sink instead of PulseAudio")
    ap.add_argument("--rate", type=float, default=50.0, help="control changes per second, all sources together")
    ap.add_argument("--model", default=None, help="model folder (default: what `demon live music` plays)")
    args = ap.parse_args()
    if not 0 < args.minutes <= 24 * 60:
        ap.error(f"--minutes must lie in (0, 1440], got {args.minutes}")
    if not 0 < args.rate <= 10_000:
        ap.error(f"--rate must lie in (0, 10000], got {args.rate}")
    midi = os.path.exists("/dev/snd/seq")
    if not midi:
        print("soak: no ALSA sequencer (/dev/snd/seq): MIDI is left out; OSC and the websocket carry the storm",
              file=sys.stderr, flush=True)
    sources = 3 if midi else 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "presets").mkdir()
        if args.null_audio:
            run(args, tmp, os.environ.copy(), ["--null-audio"], midi, sources)
        else:
            (tmp / "pulse").mkdir()
            with null_sink_server(tmp / "pulse") as pulse:
                run(args, tmp, pulse["env"], ["--device", "pulse"], midi, sources)


def run(args, tmp: Path, env: dict, audio: list[str], midi: bool, sources: int) -> None:
    osc_port, web_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    seconds = args.minutes * 60
    # --run-seconds only as a backstop: the soak stops the engine itself (SIGTERM) when done
    cmd = [sys.executable, "-m", "demon", "live", "music", *audio, "--osc-port", str(osc_port), "--web",
           "--web-port", str(web_port), "--presets", str(tmp / "presets"),
           "--run-seconds", str(seconds + START_TIMEOUT_S + 120), "--counters-out", str(tmp / "counters.json")]
    if args.model:
        cmd += ["--model", args.model]
    if midi:
        cmd += ["--midi-in", "demon-soak"]
    sent = {"osc": 0, "websocket": 0, "midi": 0}
    errors: list[str] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    start = end = None
    first: dict = {}
    p50s, p99s, recalls, rss = [], [], 0, []
    log = open(tmp / "engine.log", "w")
    proc = None
    try:
        if midi:  # the port exists before the engine looks for it
            threads.append(threading.Thread(target=midi_storm, args=("demon-soak", args.rate / sources, stop, sent,
                                                                      errors), daemon=True))
            threads[-1].start()
            time.sleep(0.5)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        osc = Osc(osc_port)
        ready_by = time.monotonic() + START_TIMEOUT_S
        while osc.counters() is None:  # models loaded, OSC answering
            if proc.poll() is not None or time.monotonic() > ready_by:
                raise RuntimeError(f"the engine did not come up: {(tmp / 'engine.log').read_text()[-2000:]}")
        time.sleep(SETTLE_S)
        for name, values in PRESETS.items():  # two presets to recall through the run
            for key, value in values.items():
                osc.send(f"/demon/{key}", value)
            time.sleep(0.2)
            osc.send("/demon/preset/save", name)
        threads += [threading.Thread(target=osc_storm, args=(osc, args.rate / sources, stop, sent), daemon=True),
                    threading.Thread(target=websocket_storm, args=(f"ws://127.0.0.1:{web_port}/ws", args.rate / sources,
                                                                   stop, sent, errors), daemon=True)]
        for thread in threads[-2:]:
            thread.start()
        time.sleep(5.0)  # every source connected: the start figures count their sockets and threads
        start, first = process_figures(proc.pid), osc.counters() or {}
        end_at = time.monotonic() + seconds
        while time.monotonic() < end_at and proc.poll() is None:
            time.sleep(min(5.0, max(0.0, end_at - time.monotonic())))
            osc.send("/demon/preset/load", list(PRESETS)[recalls % len(PRESETS)])
            recalls += 1
            figures = process_figures(proc.pid)
            if figures is not None:
                rss.append((time.monotonic(), figures["rss_mb"]))
                end = figures
            counters = osc.counters()
            if counters and counters.get("tick_p50_ms") is not None:
                p50s.append(counters["tick_p50_ms"])
                p99s.append(counters["tick_p99_ms"])
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        if proc.poll() is None:
            proc.terminate()  # a clean stop: the engine writes its counters
        code = proc.wait(timeout=60)
    except Exception as err:  # noqa: BLE001 - reported as a figure; what was measured is still printed
        errors.append(str(err)[-500:])
        code = None
    finally:
        stop.set()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    start = start or {"rss_mb": float("nan"), "fds": -1, "threads": -1}
    end = end or start
    final = json.loads((tmp / "counters.json").read_text()) if (tmp / "counters.json").exists() else {}
    if code not in (0, None):
        errors.append(f"engine exit {code}: {(tmp / 'engine.log').read_text()[-500:]}")
    controls = final.get("controls", {})
    bad = {k: v for k, v in {**final.get("osc", {}), **final.get("web", {}), **final.get("midi", {})}.items()
           if k in ("bad_args", "unknown_address", "malformed", "errors", "dropped") and v}
    p50s.sort()
    figures = [
        ("underflows", final.get("underflows", -1), "flags"),
        ("starved_blocks", final.get("starved_blocks", -1), "blocks"),
        ("deadline_misses", final.get("deadline_misses", -1), "blocks"),
        ("tick_p50_ms", p50s[len(p50s) // 2] if p50s else float("nan"), "ms"),
        ("tick_p99_ms", max(p99s, default=float("nan")), "ms"),
        ("tick_max_ms", final.get("tick_max_ms", float("nan")), "ms"),
        ("completions", final.get("completions", 0) - first.get("completions", 0), "loops"),
        ("rss_start_mb", start["rss_mb"], "MB"),
        ("rss_end_mb", end["rss_mb"], "MB"),
        ("rss_growth_pct", 100 * (end["rss_mb"] / start["rss_mb"] - 1), "%"),
        ("rss_slope_late_mb_per_min", late_slope(rss), "MB/min"),
        ("fds_start", start["fds"], "fds"), ("fds_end", end["fds"], "fds"),
        ("threads_start", start["threads"], "threads"), ("threads_end", end["threads"], "threads"),
        ("errors", len(errors), "errors"),
    ]
    extra = {"minutes": args.minutes, "audio": "null" if args.null_audio else "pulseaudio null sink",
             "sent": sent, "preset_recalls": recalls, "counted_bad_controls": bad, "controls": controls,
             "error_list": errors[:5]}
    for i, (metric, value, unit) in enumerate(figures):
        emit("soak", metric, value, unit, **(extra if i == 0 else {"minutes": args.minutes}))


if __name__ == "__main__":
    main()
