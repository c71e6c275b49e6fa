"""One compute node's peak memory and throughput against the number of data owners K, without a
memory budget and with one (docs/memory.md).

    python benchmarks/node_memory.py [--json] [--out FILE] [--owners 4,16,64] [--budget-instances 4]
        [--device cuda] [--width 1024] [--batch 256]

The node hosts a wide MLP middle part (4 x Linear(width, width), SGD with momentum: 16.8 MB of
weights, 33.6 MB an instance at the default width). Each configuration runs in a fresh subprocess
that holds this node only: a scripted transport plays the data owners (one batch in flight each,
as in a run), so the process's peak RSS (VmHWM) is the node's. The budget is
``--budget-instances`` instances' state plus their batches' activations, the same bytes at every K.
With ``--device cuda`` the node computes on the GPU (its messages stay on the host) and the memory
that counts is the GPU's: ``peak_device_bytes`` (torch's peak allocation), which ``flat_ratio``
then compares.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque

from _common import child_json, machine, write

LAYERS, BATCHES = 4, 3


def _vmhwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(owners: int, budget: int | None, device: str, width: int, batch: int) -> dict:
    """Two rounds of ``owners`` data owners through one node; the second is timed."""
    import torch
    from torch import nn

    from mpsl.errors import TransportTimeout
    from mpsl.runtime.compute_node import ComputeNode
    from mpsl.runtime.events import EventLog
    from mpsl.runtime.messages import Kind, Message
    from mpsl.training.allocator import keep_freed_memory
    from mpsl.training.steps import make_optimizer

    keep_freed_memory()  # as the engine and a deployed member do
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(LAYERS):
        layers += [nn.Linear(width, width), nn.ReLU()]
    part = nn.Sequential(*layers)
    x = torch.randn(batch, width)
    g = torch.randn(batch, width) / batch

    class Owners:
        """The data owners: a batch's gradient answers its activation, the next batch follows."""

        def __init__(self) -> None:
            self.inbox: deque[Message] = deque()
            self.round = 0

        def send(self, dest: str, msg: Message) -> None:
            if msg.kind is Kind.ACTIVATION:
                self.inbox.append(
                    Message(Kind.GRADIENT, dest, msg.owner, msg.batch, msg.round, tensor=g)
                )
            elif msg.kind is Kind.GRADIENT and msg.batch + 1 < BATCHES:
                self.inbox.append(self.activation(msg.owner, msg.batch + 1))

        def activation(self, k: int, b: int) -> Message:
            return Message(Kind.ACTIVATION, f"owner{k + 1}", k, b, self.round, tensor=x)

        def recv(self, endpoint: str, timeout: float | None = None) -> Message:
            if not self.inbox:
                raise TransportTimeout("empty")
            return self.inbox.popleft()

        def close(self) -> None:
            pass

    script = Owners()
    node = ComputeNode(
        name="node1",
        part=part,
        owners=range(owners),
        prev_hop=lambda k: f"owner{k + 1}",
        next_hop=lambda k: f"owner{k + 1}",
        transport=script,  # type: ignore[arg-type]
        events=EventLog(),
        make_optimizer=lambda m: make_optimizer(m.parameters(), "sgd", 0.01, 0.9, 0.0),
        memory_budget=budget,
        torch_device=torch.device(device),
    )
    elapsed = 0.0
    for r in range(2):
        script.round = r
        script.inbox.append(
            Message(Kind.ROUND_START, "coordinator", round=r, owners=tuple(range(owners)))
        )
        script.inbox.extend(script.activation(k, 0) for k in range(owners))
        start = time.perf_counter()
        while script.inbox or len(node.queue):
            node._handle(node._next())
        node._handle(Message(Kind.AGGREGATE, "coordinator", round=r, owners=tuple(range(owners))))
        elapsed = time.perf_counter() - start
    node.store.close()
    gpu = device.startswith("cuda")
    return {
        "owners": owners,
        "budget_bytes": budget,
        "device": device,
        "peak_rss_bytes": _vmhwm(),
        "peak_device_bytes": torch.cuda.max_memory_allocated() if gpu else None,
        "samples_per_s": owners * BATCHES * batch / elapsed,
        "resident_instances": len(node.store.slots),
        "swaps_in": node.store.swaps_in,
        "prefetched": node.store.prefetched,
        "instance_bytes": node.store.instance_bytes,
    }


def run(owners: int, budget: int | None, a: argparse.Namespace) -> dict:
    """``child`` in a fresh interpreter: its peak RSS is this configuration's alone."""
    args = [__file__, "--child", str(owners), str(budget or 0)]
    args += ["--device", a.device, "--width", str(a.width), "--batch", str(a.batch)]
    return child_json(args, f"K={owners} budget={budget}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--owners", default="4,16,64")
    ap.add_argument("--budget-instances", type=int, default=4)
    ap.add_argument("--device", default="cpu", help="Where the node computes: cpu or cuda.")
    ap.add_argument("--width", type=int, default=1024, help="Features of each Linear layer.")
    ap.add_argument("--batch", type=int, default=256, help="Samples per batch.")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], a.child[1] or None, a.device, a.width, a.batch)))
        return
    ks = [int(k) for k in a.owners.split(",")]
    weights = LAYERS * (a.width * a.width + a.width) * 4
    instance = 2 * weights  # weights and momentum
    batch = LAYERS * 2 * a.batch * a.width * 4  # each Linear's input and each ReLU's output, about
    budget = a.budget_instances * (instance + batch) + weights
    rows = [run(k, None, a) for k in ks] + [run(k, budget, a) for k in ks]
    free = {r["owners"]: r for r in rows if r["budget_bytes"] is None}
    tight = {r["owners"]: r for r in rows if r["budget_bytes"] is not None}
    largest = max(free)
    peak = "peak_device_bytes" if a.device.startswith("cuda") else "peak_rss_bytes"
    data = {
        "device": a.device,
        "width": a.width,
        "batch": a.batch,
        "rows": rows,
        "flat_ratio": tight[max(ks)][peak] / tight[min(ks)][peak],
        "throughput_ratio": tight[largest]["samples_per_s"] / free[largest]["samples_per_s"],
        "machine": machine(),
    }
    path = write("node_memory", data, a.out)
    if a.json:
        print(json.dumps(data, indent=1))
    else:
        for r in rows:
            print(r)
        print(
            f"flat_ratio {data['flat_ratio']:.3f}  throughput_ratio {data['throughput_ratio']:.3f}"
        )
        print(f"written to {path}")


if __name__ == "__main__":
    main()
