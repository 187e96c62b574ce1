"""An OSC flood over UDP on loopback for a fixed time, then exit (used by test_faults).

    python tests/osc_flood.py PORT RATE SECONDS
Sends RATE packets per second from one socket: valid parameter changes, unknown
addresses and garbage bytes in turn. Prints JSON: packets sent and the seconds taken.
"""

import json
import socket
import sys
import time

from pythonosc.osc_message_builder import OscMessageBuilder


def packets() -> list[bytes]:
    out = []
    for i in range(100):
        b = OscMessageBuilder("/demon/prompt_blend")
        b.add_arg(i / 100)
        out.append(b.build().dgram)
    out.append(OscMessageBuilder("/demon/nothing_here").build().dgram)
    out.append(b"\x00garbage\xff" * 3)
    return out


def main(port: int, rate: float, seconds: float) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pool, sent, start = packets(), 0, time.monotonic()
    while (now := time.monotonic() - start) < seconds:
        for _ in range(int(now * rate) - sent):  # catch up to the schedule, a millisecond at a time
            sock.sendto(pool[sent % len(pool)], ("127.0.0.1", port))
            sent += 1
        time.sleep(0.001)
    return {"sent": sent, "seconds": time.monotonic() - start}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))))
