"""The networked transport against plain TCP: throughput of 32 MiB activations, 1 KB round trips.

    python benchmarks/transport.py [--json] [--out FILE] [--repeats 5] [--messages 16] [--secure]

Transport: a sender process sends ``--messages`` Kind.ACTIVATION Messages, each carrying a float32
tensor of 32 MiB, through mpsl.deploy.transport.ZmqTransport to a receiver process; the receiver
takes each Message out of recv(), checks that it holds a torch tensor of the right size (two of its
values too) and drops it; after the last one it answers with a small message. The sender's clock
runs from its first send() until that answer arrives, so encode, ZeroMQ, decode and the inbox are
all inside the time. Throughput = messages x 32 MiB / that time, in GB/s (1e9 bytes).

Plain TCP, the baseline: the same layout (two processes, one TCP connection over 127.0.0.1,
TCP_NODELAY as ZeroMQ sets it) and the same bytes. The sender writes a 9-byte header and the
tensor's memory with sendmsg/sendall (no copy in Python); the receiver recv_into()s a buffer it
allocated once and reuses for every message: no allocation, no page faults, no decoding beyond the
header, the best a Python process gets from one TCP connection. ratio = transport / plain TCP.

rtt_1kb_us: median round trip of a Message with a 1 KiB tensor (send, the receiver echoes it back
with the same tensor, recv), the same for plain TCP under plain_tcp.rtt_1kb_us.

Every run measures four links, each its own pair of processes (spawned, so no GIL and no ZeroMQ
context is shared): plain TCP; ZmqTransport without encryption ("none"); ZmqTransport with CURVE
keys as deployments run it ("sealed": CURVE authenticates the peers and carries the session key,
every message goes sealed with AES-256-GCM over the second connection, deploy/seal.py); and
ZmqTransport with CURVE encrypting every message ("curve": the route given no sealed address, as
before the sealed path). They take turns within each repeat (so a noisy neighbour hits all alike);
every figure is the median over repeats, with the spread (min, max) and each run alongside. The
top-level transport_gbps, ratio and rtt_1kb_us are for the link without encryption, or the sealed
one given --secure (the "encryption" key says which); every mode is always under "modes".
Processes that run ZmqTransport import mpsl.deploy.transport, which tunes glibc's malloc to keep
large buffers (mpsl.training.allocator.keep_freed_memory); rx_page_faults_per_message shows
whether the receiver's buffers are reused
(a 32 MiB buffer in fresh pages costs 8192 minor faults with 4 KiB pages), and
tx_page_faults_per_message the same for the sender (the sealed path's ciphertext buffers).
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

import torch

from _common import machine, write
from mpsl.runtime.messages import Kind, Message

PAYLOAD_BYTES = 32 * 2**20
PING_BYTES = 1024
TIMEOUT_S = 120.0
WARMUP_MESSAGES = 4
PINGS = 200
PING_WARMUP = 20
MODES = ("tcp", "none", "sealed", "curve")  # plain TCP, then ZmqTransport: clear, sealed, CURVE

# Plain TCP framing: message type (one byte) and payload length.
HEADER = struct.Struct("<BQ")
BULK, LAST, PING, ACK, STOP = range(5)
FAULTS = struct.Struct("<d")


def payload() -> torch.Tensor:
    """The 32 MiB activation: float32 values, each message the same tensor (sent without copy)."""
    return torch.arange(PAYLOAD_BYTES // 4, dtype=torch.float32)


def check(t: Any) -> None:
    """What the receiver insists on: a torch tensor, the whole of it, the right bytes."""
    if not isinstance(t, torch.Tensor) or t.dtype != torch.float32 or t.nbytes != PAYLOAD_BYTES:
        raise RuntimeError(f"received {type(t).__name__} instead of the 32 MiB float32 tensor")
    if t[1].item() != 1.0 or t[-1].item() != PAYLOAD_BYTES // 4 - 1:
        raise RuntimeError("received tensor has the wrong values")


class Faults:
    """Minor page faults of this process (all its threads) per message received since last asked."""

    def __init__(self) -> None:
        self.count, self.start = 0, self._now()

    @staticmethod
    def _now() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def per_message(self) -> float:
        now = self._now()
        value = (now - self.start) / max(self.count, 1)
        self.count, self.start = 0, now
        return value


# ---- ZmqTransport ends ---------------------------------------------------------------------


def _credentials(keys: str | None, name: str):
    if keys is None:
        return None
    from mpsl.deploy.keys import load_credentials

    return load_credentials(keys, name)


def _connect(ctl: Connection, transport, peer: str, sealed: bool) -> None:
    """Tell the parent our addresses and key, get the peer's, add the route."""
    ctl.send((transport.address, transport.public_key, transport.sealed_address))
    address, key, sealed_address = ctl.recv()
    transport.add_route(peer, address, key, sealed=sealed_address if sealed else None)


def zmq_sender(ctl: Connection, keys: str | None, sealed: bool) -> None:
    from mpsl.deploy.transport import ZmqTransport

    tx = ZmqTransport("tx", credentials=_credentials(keys, "tx"))
    _connect(ctl, tx, "rx", sealed)
    bulk = Message(Kind.ACTIVATION, "tx", owner=0, batch=0, round=0, tensor=payload())
    last = replace(bulk, text="last")
    ping = Message(Kind.ACTIVATION, "tx", owner=0, tensor=torch.ones(PING_BYTES // 4), text="ping")
    faults = Faults()
    while True:
        cmd, n = ctl.recv()
        if cmd == "bulk":
            faults.per_message()  # from here
            start = time.perf_counter()
            for _ in range(n - 1):
                tx.send("rx", bulk)
            tx.send("rx", last)
            ack = tx.recv("tx", timeout=TIMEOUT_S)
            faults.count = n
            ctl.send((time.perf_counter() - start, ack.value, faults.per_message()))
        elif cmd == "rtt":
            rtts = []
            for _ in range(n):
                start = time.perf_counter()
                tx.send("rx", ping)
                echo = tx.recv("tx", timeout=TIMEOUT_S)
                rtts.append(time.perf_counter() - start)
                if echo.tensor is None or echo.tensor.numel() * 4 != PING_BYTES:
                    raise RuntimeError("the echo lost its tensor")
            ctl.send(rtts)
        else:
            tx.send("rx", Message(Kind.STOP, "tx"))
            tx.close()
            ctl.send("stopped")
            return


def zmq_receiver(ctl: Connection, keys: str | None, sealed: bool) -> None:
    from mpsl.deploy.transport import ZmqTransport

    rx = ZmqTransport("rx", credentials=_credentials(keys, "rx"))
    _connect(ctl, rx, "tx", sealed)
    faults = Faults()
    while True:
        msg = rx.recv("rx", timeout=TIMEOUT_S)
        if msg.kind is Kind.STOP:
            break
        if msg.text == "ping":
            rx.send("tx", Message(Kind.ACTIVATION, "rx", owner=0, tensor=msg.tensor))
        else:
            check(msg.tensor)
            faults.count += 1
            if msg.text == "last":
                rx.send("tx", Message(Kind.ACTIVATION, "rx", owner=0, value=faults.per_message()))
        del msg  # free the buffer before the next message, as a role done with it would
    rx.close(linger_s=0.5)


# ---- plain TCP ends ------------------------------------------------------------------------


def _send(sock: socket.socket, kind: int, data: memoryview | bytes = b"") -> None:
    head = HEADER.pack(kind, len(data))
    sent = sock.sendmsg([head, data]) if len(data) else sock.send(head)
    if sent < len(head):
        sock.sendall(head[sent:])
        sent = len(head)
    if sent < len(head) + len(data):
        sock.sendall(memoryview(data)[sent - len(head) :])


def _recv_into(sock: socket.socket, view: memoryview) -> None:
    got, n = 0, len(view)
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if not k:
            raise ConnectionError("peer closed the connection")
        got += k


def _recv_header(sock: socket.socket, head: memoryview) -> tuple[int, int]:
    _recv_into(sock, head)
    return HEADER.unpack(head)


def tcp_sender(ctl: Connection, keys: str | None, sealed: bool) -> None:
    ctl.send(None)
    port = ctl.recv()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tensor = payload()
    data = memoryview(tensor.numpy()).cast("B")
    ping = memoryview(torch.ones(PING_BYTES // 4).numpy()).cast("B")
    head = memoryview(bytearray(HEADER.size))
    echo = memoryview(bytearray(PING_BYTES))
    faults = Faults()
    while True:
        cmd, n = ctl.recv()
        if cmd == "bulk":
            faults.per_message()  # from here
            start = time.perf_counter()
            for i in range(n):
                _send(sock, LAST if i == n - 1 else BULK, data)
            _, size = _recv_header(sock, head)
            _recv_into(sock, echo[:size])
            faults.count = n
            seconds = time.perf_counter() - start
            ctl.send((seconds, FAULTS.unpack(echo[:size])[0], faults.per_message()))
        elif cmd == "rtt":
            rtts = []
            for _ in range(n):
                start = time.perf_counter()
                _send(sock, PING, ping)
                _, size = _recv_header(sock, head)
                _recv_into(sock, echo[:size])
                rtts.append(time.perf_counter() - start)
            ctl.send(rtts)
        else:
            _send(sock, STOP)
            sock.close()
            ctl.send("stopped")
            return


def tcp_receiver(ctl: Connection, keys: str | None, sealed: bool) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    ctl.send(server.getsockname()[1])
    ctl.recv()
    sock, _ = server.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = memoryview(bytearray(PAYLOAD_BYTES))  # allocated once, reused: the best case
    tensor = torch.frombuffer(buffer, dtype=torch.float32)
    head = memoryview(bytearray(HEADER.size))
    faults = Faults()
    while True:
        kind, size = _recv_header(sock, head)
        if kind == STOP:
            break
        _recv_into(sock, buffer[:size])
        if kind == PING:
            _send(sock, ACK, buffer[:size])
        else:
            check(tensor)
            faults.count += 1
            if kind == LAST:
                _send(sock, ACK, FAULTS.pack(faults.per_message()))
    sock.close()
    server.close()


ENDS = {
    "tcp": (tcp_sender, tcp_receiver),
    "none": (zmq_sender, zmq_receiver),
    "sealed": (zmq_sender, zmq_receiver),
    "curve": (zmq_sender, zmq_receiver),
}


# ---- the parent ----------------------------------------------------------------------------


class Link:
    """A sender and a receiver process; the parent drives the sender through a pipe."""

    def __init__(self, mode: str, keys: str) -> None:
        ctx = get_context("spawn")
        sender, receiver = ENDS[mode]
        key_dir = keys if mode in ("sealed", "curve") else None
        sealed = mode == "sealed"
        self.ctl, s_child = ctx.Pipe()
        r_ctl, r_child = ctx.Pipe()
        self.procs = [
            ctx.Process(target=receiver, args=(r_child, key_dir, sealed), daemon=True),
            ctx.Process(target=sender, args=(s_child, key_dir, sealed), daemon=True),
        ]
        for p in self.procs:
            p.start()
        r_info, s_info = _answer(r_ctl), _answer(self.ctl)
        r_ctl.send(s_info)
        self.ctl.send(r_info)

    def ask(self, cmd: str, n: int) -> Any:
        self.ctl.send((cmd, n))
        return _answer(self.ctl)

    def close(self) -> None:
        try:
            self.ask("stop", 0)
        finally:
            for p in self.procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.terminate()


def _answer(conn: Connection) -> Any:
    if not conn.poll(TIMEOUT_S):
        raise RuntimeError(f"no answer from a benchmark process within {TIMEOUT_S:.0f} s")
    return conn.recv()


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(repeats: int, messages: int) -> dict[str, dict[str, list[float]]]:
    """Per mode: GB/s of each repeat, and each repeat's median 1 KB round trip in µs."""
    from mpsl.deploy.keys import create_keys

    runs: dict[str, dict[str, list[float]]] = {
        m: {"gbps": [], "rtt_us": [], "rx_faults": [], "tx_faults": []} for m in MODES
    }
    with tempfile.TemporaryDirectory(prefix="mpsl-bench-keys-") as keys:
        create_keys(keys, ["tx", "rx"])
        links = {}
        try:
            for mode in MODES:
                links[mode] = Link(mode, keys)
                links[mode].ask("bulk", WARMUP_MESSAGES)  # connect, handshake, warm the heap
                links[mode].ask("rtt", PING_WARMUP)
            for _ in range(repeats):
                for mode in MODES:
                    seconds, rx_faults, tx_faults = links[mode].ask("bulk", messages)
                    runs[mode]["gbps"].append(messages * PAYLOAD_BYTES / seconds / 1e9)
                    runs[mode]["rx_faults"].append(rx_faults)
                    runs[mode]["tx_faults"].append(tx_faults)
                for mode in MODES:
                    rtts = links[mode].ask("rtt", PINGS)
                    runs[mode]["rtt_us"].append(statistics.median(rtts) * 1e6)
        finally:
            for link in links.values():
                link.close()
    return runs


def report(runs: dict[str, dict[str, list[float]]], headline: str, args) -> dict[str, Any]:
    tcp = statistics.median(runs["tcp"]["gbps"])
    modes = {}
    for mode in MODES[1:]:
        gbps = runs[mode]["gbps"]
        modes[mode] = {
            "transport_gbps": statistics.median(gbps),
            "ratio": statistics.median(gbps) / tcp,
            "rtt_1kb_us": statistics.median(runs[mode]["rtt_us"]),
            "gbps_spread": spread(gbps),
            "ratio_per_repeat": [g / t for g, t in zip(gbps, runs["tcp"]["gbps"], strict=True)],
            "rtt_1kb_us_spread": spread(runs[mode]["rtt_us"]),
            "rx_page_faults_per_message": statistics.median(runs[mode]["rx_faults"]),
            "tx_page_faults_per_message": statistics.median(runs[mode]["tx_faults"]),
            "runs": runs[mode],
        }
    top = modes[headline]
    return {
        "payload_bytes": PAYLOAD_BYTES,
        "transport_gbps": top["transport_gbps"],
        "plain_tcp_gbps": tcp,
        "ratio": top["ratio"],
        "rtt_1kb_us": top["rtt_1kb_us"],
        "encryption": headline,
        "benchmark": "transport",
        "goal": "ratio >= 0.5",
        "goal_met": {m: modes[m]["ratio"] >= 0.5 for m in modes},
        "messages_per_run": args.messages,
        "repeats": args.repeats,
        "plain_tcp": {
            "gbps_spread": spread(runs["tcp"]["gbps"]),
            "rtt_1kb_us": statistics.median(runs["tcp"]["rtt_us"]),
            "rtt_1kb_us_spread": spread(runs["tcp"]["rtt_us"]),
            "rx_page_faults_per_message": statistics.median(runs["tcp"]["rx_faults"]),
            "tx_page_faults_per_message": statistics.median(runs["tcp"]["tx_faults"]),
            "runs": runs["tcp"],
        },
        "modes": modes,
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/transport.json)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--messages", type=int, default=16, help="32 MiB messages per run")
    parser.add_argument(
        "--secure",
        action="store_true",
        help="top-level figures for the sealed path (every mode always measured)",
    )
    args = parser.parse_args()
    if args.repeats < 1 or args.messages < 1:
        parser.error("--repeats and --messages must be at least 1")
    runs = measure(args.repeats, args.messages)
    data = report(runs, "sealed" if args.secure else "none", args)
    if not args.json:
        tcp = data["plain_tcp"]
        print(
            f"plain TCP             {data['plain_tcp_gbps']:6.2f} GB/s "
            f"[{tcp['gbps_spread']['min']:.2f}-{tcp['gbps_spread']['max']:.2f}]   "
            f"1 KB rtt {tcp['rtt_1kb_us']:7.1f} µs   "
            f"rx faults/msg {tcp['rx_page_faults_per_message']:5.0f}   "
            f"tx {tcp['tx_page_faults_per_message']:5.0f}",
            file=sys.stderr,
        )
        labels = {
            "none": "ZmqTransport",
            "sealed": "ZmqTransport sealed",
            "curve": "ZmqTransport+CURVE",
        }
        for mode, label in labels.items():
            m = data["modes"][mode]
            print(
                f"{label:21s} {m['transport_gbps']:6.2f} GB/s "
                f"[{m['gbps_spread']['min']:.2f}-{m['gbps_spread']['max']:.2f}]   "
                f"1 KB rtt {m['rtt_1kb_us']:7.1f} µs   "
                f"rx faults/msg {m['rx_page_faults_per_message']:5.0f}   "
                f"tx {m['tx_page_faults_per_message']:5.0f}   ratio {m['ratio']:.2f}",
                file=sys.stderr,
            )
    path = write("transport", data, args.out)
    print(json.dumps(data, indent=1) if args.json else f"wrote {path}")


if __name__ == "__main__":
    main()
