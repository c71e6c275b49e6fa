"""ZmqTransport over a shaped link: the two ends in separate network namespaces, joined by a veth
pair whose both directions tc shapes to 50 Mbit/s (tbf) with 20 ms of delay each way (netem).

Each end is its own process, started with ``ip netns exec NS python -c ...``: a server that echoes
1 KB messages and acknowledges 4 MiB ones, and a client that times both. Measured times must follow
the shaping: a 1 KB round trip takes about 2 x 20 ms, a 4 MiB tensor about its bytes (with TCP/IP
headers) at 50 Mbit/s plus a round trip. Tolerances are wide (±35 %) so that a loaded machine does
not fail them, yet an unshaped link (a round trip well under 1 ms, 4 MiB in milliseconds) would.

Needs Linux, root, ``ip`` (with netns) and ``tc``, and the tbf qdisc; the delay needs netem. What
is missing is named in the skip reason; the namespaces are deleted even when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

RATE_MBIT = 50
DELAY_MS = 20
TOLERANCE = 0.35
TENSOR_BYTES = 4 * 2**20
PINGS = 15
TRANSFERS = 3
# Bytes tbf counts per 1448 payload bytes of a full TCP segment: + 32 TCP (with timestamps)
# + 20 IP + 14 Ethernet header.
WIRE_EFFICIENCY = 1448 / (1448 + 32 + 20 + 14)
ADDRESSES = ("10.231.0.1", "10.231.0.2")  # client, server; private to the two namespaces
DEVICE = "mpsl0"

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(sys.platform != "linux", reason="network namespaces need Linux"),
    pytest.mark.skipif(
        sys.platform == "linux" and os.geteuid() != 0,
        reason="needs root to create network namespaces and shape them with tc",
    ),
]

SERVER = """
import sys
from mpsl.deploy.control import ControlKind, ready
from mpsl.deploy.transport import ZmqTransport
from mpsl.runtime.messages import Kind, Message

t = ZmqTransport("server", bind=f"tcp://{sys.argv[1]}:*")
print(t.address, flush=True)
while True:
    msg = t.recv_packet(timeout=60)
    if msg.kind is Kind.STOP:
        break
    if msg.kind is ControlKind.REGISTER:
        t.add_route("client", msg.body.address)
        t.send("client", ready("server"))
    elif msg.text == "ping":
        t.send("client", Message(Kind.ACTIVATION, "server", owner=0, tensor=msg.tensor))
    else:  # a tensor to acknowledge: say how many bytes arrived
        t.send("client", Message(Kind.ACTIVATION, "server", owner=0, value=msg.tensor.nbytes))
t.close(linger_s=1.0)
"""

CLIENT = """
import json, sys, time
import torch
from mpsl.deploy.control import registration
from mpsl.deploy.transport import ZmqTransport
from mpsl.runtime.messages import Kind, Message

server, bind, nbytes, pings, transfers = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
t = ZmqTransport("client", bind=f"tcp://{bind}:*")
t.add_route("server", server)
t.send("server", registration("client", t.address))
t.recv_packet(timeout=30)  # READY: both directions work


def round_trip(msg):
    start = time.perf_counter()
    t.send("server", msg)
    reply = t.recv("client", timeout=60)
    return time.perf_counter() - start, reply


ping = Message(Kind.ACTIVATION, "client", owner=0, tensor=torch.ones(256), text="ping")
bulk = Message(Kind.ACTIVATION, "client", owner=0, tensor=torch.ones(nbytes // 4), text="bulk")
for _ in range(3):
    round_trip(ping)
rtt = []
for _ in range(pings):
    seconds, reply = round_trip(ping)
    assert reply.tensor is not None and reply.tensor.nbytes == 1024, reply
    rtt.append(seconds)
round_trip(bulk)  # warm-up: TCP's congestion window opens
transfer = []
for _ in range(transfers):
    seconds, reply = round_trip(bulk)
    assert reply.value == nbytes, reply  # the server received the whole tensor
    transfer.append(seconds)
t.send("server", Message(Kind.STOP, "client"))
t.close()
print(json.dumps({"rtt_s": rtt, "transfer_s": transfer}))
"""


@dataclass
class Measured:
    """What the client measured over the shaped link."""

    delay_ms: float  # configured one-way delay, 0 without netem
    no_delay_reason: str
    rtt_s: list[float] = field(default_factory=list)
    transfer_s: list[float] = field(default_factory=list)


def _run(*cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _must(*cmd: str) -> None:
    result = _run(*cmd)
    if result.returncode:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()}")


def _in(ns: str, *cmd: str) -> tuple[str, ...]:
    return ("ip", "netns", "exec", ns, *cmd)


def _shape(ns: str, netem: bool) -> str:
    """Shape ``ns``'s end of the veth: netem delay (if asked), then tbf rate.

    Returns "" or, when netem was asked for and the kernel refused it, tc's error.
    """
    qdisc = _in(ns, "tc", "qdisc", "add", "dev", DEVICE)
    parent: tuple[str, ...] = ("root", "handle", "10:")
    error = ""
    if netem:
        netem_args = ("netem", "delay", f"{DELAY_MS}ms", "limit", "10000")
        result = _run(*qdisc, "root", "handle", "1:", *netem_args)
        if result.returncode == 0:
            parent = ("parent", "1:1", "handle", "10:")
        else:
            error = result.stderr.strip() or f"exit status {result.returncode}"
    tbf_args = ("tbf", "rate", f"{RATE_MBIT}mbit", "burst", "32kb", "latency", "400ms")
    result = _run(*qdisc, *parent, *tbf_args)
    if result.returncode:
        pytest.skip(f"tc cannot add a tbf qdisc here (kernel without sch_tbf?): {result.stderr}")
    return error


def _read_address(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line the server prints that is a ZeroMQ address."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("tcp://"):
            return line.strip()
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise RuntimeError(f"the server printed no address within {timeout} s: {err[-2000:]}")


@pytest.fixture(scope="module")
def measured() -> Iterator[Measured]:
    """Set up the namespaces and the shaped veth pair, run both ends, return what was measured."""
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found on PATH (iproute2 is needed)")
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    spaces = (f"mpsl-{tag}-client", f"mpsl-{tag}-server")
    made: list[str] = []
    procs: list[subprocess.Popen[str]] = []
    try:
        for ns in spaces:
            result = _run("ip", "netns", "add", ns)
            if result.returncode:
                pytest.skip(f"`ip netns add` failed: {result.stderr.strip()}")
            made.append(ns)
        client_ns, server_ns = spaces
        veth = ("type", "veth", "peer", "name", DEVICE, "netns", server_ns)
        result = _run("ip", "link", "add", DEVICE, "netns", client_ns, *veth)
        if result.returncode:
            pytest.skip(f"cannot create a veth pair: {result.stderr.strip()}")
        for ns, address in zip(spaces, ADDRESSES, strict=True):
            _must(*_in(ns, "ip", "addr", "add", f"{address}/30", "dev", DEVICE))
            _must(*_in(ns, "ip", "link", "set", DEVICE, "up"))
            _must(*_in(ns, "ip", "link", "set", "lo", "up"))
            # Keep the congestion window between transfers, as a busy link would.
            _run(*_in(ns, "sysctl", "-qw", "net.ipv4.tcp_slow_start_after_idle=0"))
        errors = [_shape(ns, netem=True) for ns in spaces]
        delay = 0 if any(errors) else DELAY_MS
        reason = (
            f"tc cannot add a netem qdisc here, so the link has no delay ({errors[0] or errors[1]};"
            " the kernel lacks sch_netem, CONFIG_NET_SCH_NETEM)"
            if delay == 0
            else ""
        )
        server = subprocess.Popen(
            _in(server_ns, sys.executable, "-u", "-c", SERVER, ADDRESSES[1]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(server)
        address = _read_address(server, timeout=60)
        sizes = (str(TENSOR_BYTES), str(PINGS), str(TRANSFERS))
        client = subprocess.run(
            _in(client_ns, sys.executable, "-u", "-c", CLIENT, address, ADDRESSES[0], *sizes),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if client.returncode:
            raise RuntimeError(f"client failed ({client.returncode}): {client.stderr[-3000:]}")
        server.wait(timeout=20)
        data = json.loads(client.stdout.strip().splitlines()[-1])
        yield Measured(delay, reason, data["rtt_s"], data["transfer_s"])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for ns in made:
            _run("ip", "netns", "del", ns)  # takes the veth pair with it


def test_round_trip_follows_the_delay(measured):
    """A 1 KB message and its echo cross the link twice: about 2 x 20 ms."""
    if not measured.delay_ms:
        pytest.skip(measured.no_delay_reason)
    rtt = statistics.median(measured.rtt_s)
    expected = 2 * measured.delay_ms / 1000
    assert abs(rtt - expected) <= TOLERANCE * expected, (
        f"1 KB round trip {rtt * 1e3:.1f} ms, expected {expected * 1e3:.0f} ms ± 35 % "
        f"(all: {[round(r * 1e3, 1) for r in measured.rtt_s]} ms)"
    )


def test_transfer_follows_the_rate(measured):
    """A 4 MiB tensor (and a small acknowledgement) take its bytes at 50 Mbit/s plus a round trip."""
    seconds = statistics.median(measured.transfer_s)
    expected = TENSOR_BYTES * 8 / (RATE_MBIT * 1e6 * WIRE_EFFICIENCY) + 2 * measured.delay_ms / 1e3
    assert abs(seconds - expected) <= TOLERANCE * expected, (
        f"4 MiB took {seconds:.3f} s, expected {expected:.3f} s ± 35 % at {RATE_MBIT} Mbit/s "
        f"with {measured.delay_ms} ms delay each way (all: {measured.transfer_s})"
    )
