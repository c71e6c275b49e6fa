"""Where a small message's round trip goes: each stage of a 1 KB echo between two processes.

    python benchmarks/round_trip.py [--json] [--out FILE] [--pings 1000] [--modes none,sealed]

Two processes each run a ZmqTransport (mpsl.deploy.transport), as benchmarks/transport.py does:
the sender sends a Kind.ACTIVATION Message with a 1 KiB float32 tensor, the receiver echoes the
tensor back in a new Message, the sender receives it. Modes: "none" (no encryption) and "sealed"
(CURVE keys: every message sealed with AES-256-GCM, deploy/seal.py).

Both processes time-stamp the stages of every round trip with time.perf_counter, which on Linux
reads one clock for all processes (CLOCK_MONOTONIC), so the stamps of the two processes can be
subtracted. The stamps come from wrappers put around the transport's functions in each process:
encode, decode, send, recv and the receiver thread's opening of a sealed message
(ZmqTransport._open). The stages of one way, in order:

- encode: the wire format's encode (deploy/wire.py)
- send: the rest of ZmqTransport.send (sealing included) until ZeroMQ has queued the message
- zeromq: from send's return until the receiver thread has the message: ZeroMQ's I/O threads on
  both ends, the kernel's TCP, the receiver thread waking from its poll
- open: sealed mode: opening the sealed message (deploy/seal.py)
- decode: the wire format's decode
- hand-off: the receiver thread's checks and its put into the inbox, until recv returns in the
  role's thread

Every figure is the median over the round trips whose stamps came in the usual order (the count
is printed). The wrappers add a little to each stage (a perf_counter call and a list append,
well under a microsecond each), so the total is slightly above an unwrapped round trip:
benchmarks/transport.py measures that one (rtt_1kb_us). Figures on a shared machine move with
its load; compare two versions by running this script for each in the same minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

import torch

from _common import machine, write
from mpsl.runtime.messages import Kind, Message

PING_FLOATS = 256  # 1 KiB
WARMUP = 100
TIMEOUT_S = 30.0
Mark = tuple[str, float]
# (from, to, stage): one way of the trip, as the stamps of the sending end "A" and receiving "B"
STAGES = [
    ("send0", "enc0", "send"),
    ("enc0", "enc1", "encode"),
    ("enc1", "send1", "send"),
    ("send1", "arrive", "zeromq"),
    ("open0", "dec0", "open"),
    ("dec0", "dec1", "decode"),
    ("dec1", "recv1", "hand-off"),
]
SENDING = {"send0", "enc0", "enc1", "send1"}
RECEIVING = {"open0", "dec0", "dec1", "recv1"}


def instrument(marks: list[Mark]) -> None:
    """Wrap the transport's functions so that each appends (stage, time) to ``marks``."""
    import mpsl.deploy.transport as transport

    clock = time.perf_counter

    def around(owner: Any, name: str, start: str, end: str | None) -> None:
        original = getattr(owner, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            marks.append((start, clock()))
            result = original(*args, **kwargs)
            if end:
                marks.append((end, clock()))
            return result

        setattr(owner, name, wrapped)

    around(transport, "encode", "enc0", "enc1")
    around(transport, "decode", "dec0", "dec1")
    around(transport.ZmqTransport, "send", "send0", "send1")
    around(transport.ZmqTransport, "recv", "recv0", "recv1")
    around(transport.ZmqTransport, "_open", "open0", None)


def end(ctl: Connection, name: str, peer: str, keys: str | None, pings: int) -> None:
    """One process: the sender ("tx") or the echoing receiver ("rx"); sends back its stamps."""
    marks: list[Mark] = []
    instrument(marks)
    from mpsl.deploy.keys import load_credentials
    from mpsl.deploy.transport import ZmqTransport

    t = ZmqTransport(name, credentials=load_credentials(keys, name) if keys else None)
    ctl.send((t.address, t.public_key, t.sealed_address))
    address, key, sealed = ctl.recv()
    t.add_route(peer, address, key, sealed=sealed)
    if name == "rx":
        while (msg := t.recv(name, timeout=TIMEOUT_S)).kind is not Kind.STOP:
            t.send(peer, Message(Kind.ACTIVATION, name, owner=0, tensor=msg.tensor))
    else:
        ping = Message(Kind.ACTIVATION, name, owner=0, tensor=torch.ones(PING_FLOATS))
        for n in range(WARMUP + pings):
            if n == WARMUP:
                marks.clear()
            marks.append(("start", time.perf_counter()))
            t.send(peer, ping)
            t.recv(name, timeout=TIMEOUT_S)
            marks.append(("end", time.perf_counter()))
        t.send(peer, Message(Kind.STOP, name))
    ctl.send(marks)
    t.close(linger_s=0.5)


def measure(mode: str, keys: str, pings: int) -> tuple[list[Mark], list[Mark]]:
    """The stamps of the sender and of the receiver, one pair of fresh processes."""
    ctx = get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(2)]
    key_dir = keys if mode == "sealed" else None
    procs = [
        ctx.Process(target=end, args=(child, name, peer, key_dir, pings), daemon=True)
        for (_, child), (name, peer) in zip(pipes, [("tx", "rx"), ("rx", "tx")], strict=True)
    ]
    for p in procs:
        p.start()
    (tx, _), (rx, _) = pipes
    tx_info, rx_info = _answer(tx), _answer(rx)
    tx.send(rx_info)
    rx.send(tx_info)
    marks = _answer(tx), _answer(rx)
    for p in procs:
        p.join(timeout=10)
    return marks


def _answer(conn: Connection) -> Any:
    if not conn.poll(TIMEOUT_S * 4):
        raise RuntimeError("no answer from a benchmark process")
    return conn.recv()


def split(tx: list[Mark], rx: list[Mark]) -> dict[str, Any]:
    """Median µs of each stage, both ways added, over the round trips in the usual order."""
    events = sorted(
        [("A" + n, t) for n, t in tx] + [("B" + n, t) for n, t in rx], key=lambda e: e[1]
    )
    trips: list[list[Mark]] = []
    for name, t in events:
        if name == "Astart":
            trips.append([])
        if trips:
            trips[-1].append((name, t))
    orders: dict[tuple[str, ...], list[list[float]]] = {}
    for trip in trips:
        if trip[-1][0] == "Aend":
            orders.setdefault(tuple(n for n, _ in trip), []).append([t for _, t in trip])
    order, rows = max(orders.items(), key=lambda kv: len(kv[1]))
    ways = [_way(order, rows, "A", "B"), _way(order, rows, "B", "A")]
    stages = {s: sum(w.get(s, 0.0) for w in ways) for _, _, s in STAGES}
    return {
        "round_trip_us": statistics.median((r[-1] - r[0]) * 1e6 for r in rows),
        "stages_us": {s: v for s, v in stages.items() if v},
        "round_trips": len(rows),
        "of": len(trips),
    }


def _way(order: tuple[str, ...], rows: list[list[float]], a: str, b: str) -> dict[str, float]:
    """Median µs of each stage of the way from ``a`` to ``b`` (the arrival is b's next stamp)."""
    at = {}
    start = order.index(a + "send0")
    for k, name in enumerate(order[start:], start):
        at.setdefault(name, k)
    arrive = min(at.get(b + "open0", len(order)), at.get(b + "dec0", len(order)))
    index = {n[1:]: k for n, k in at.items() if n[0] == a and k < arrive and n[1:] in SENDING}
    index |= {n[1:]: k for n, k in at.items() if n[0] == b and k >= arrive and n[1:] in RECEIVING}
    index["arrive"] = arrive
    out: dict[str, float] = {}
    for first, last, stage in STAGES:
        if first in index and last in index:
            d = statistics.median(r[index[last]] - r[index[first]] for r in rows) * 1e6
            out[stage] = out.get(stage, 0.0) + d
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/round_trip.json)")
    parser.add_argument("--pings", type=int, default=1000)
    parser.add_argument("--modes", default="none,sealed", help="none, sealed or both")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if args.pings < 1 or not set(modes) <= {"none", "sealed"}:
        parser.error("--pings must be at least 1; --modes: none and/or sealed")
    from mpsl.deploy.keys import create_keys

    results = {}
    with tempfile.TemporaryDirectory(prefix="mpsl-bench-keys-") as keys:
        create_keys(keys, ["tx", "rx"])
        for mode in modes:
            results[mode] = split(*measure(mode, keys, args.pings))
    data = {"benchmark": "round_trip", "pings": args.pings, "modes": results, "machine": machine()}
    if not args.json:
        for mode, r in results.items():
            stages = "  ".join(f"{s} {v:.0f}" for s, v in r["stages_us"].items())
            print(
                f"{mode:7s} round trip {r['round_trip_us']:6.0f} µs = {stages}  "
                f"({r['round_trips']} of {r['of']} round trips in the usual order)",
                file=sys.stderr,
            )
    path = write("round_trip", data, args.out)
    print(json.dumps(data, indent=1) if args.json else f"wrote {path}")


if __name__ == "__main__":
    main()
