"""Training on a thread that is not the first to run torch's parallel loops: what a second OpenMP
pool costs (why a member does all its torch work on one thread, deploy/threads.py ComputeThread).

    python benchmarks/openmp_pools.py [--json] [--out FILE] [--repeats 3] [--batches 4]
        [--model resnet101_basic] [--batch 64]

torch's CPU kernels run their parallel loops on OpenMP, which gives every thread that starts one a
pool of worker threads. Each configuration runs in a fresh interpreter with torch's default
threads, and trains ``--model`` (SGD with momentum, synthetic 3x32x32) on a second thread:

- one_pool: the main thread runs no parallel loop: the process holds one pool;
- two_pools: the main thread first runs one parallel loop (a large add), as a member that built
  its part on its main thread and computed on another did.

Each row: ms a batch, the process's CPU time over wall time while training (``cores_busy``, at
most the threads), and its voluntary context switches a batch. slowdown = two_pools / one_pool ms
a batch, per repeat, taking turns (a noisy neighbour hits both alike); above 1, the second pool
slows training.
"""

from __future__ import annotations

import argparse
import json
import statistics

from _common import child_json, machine, write

MODES = ("one_pool", "two_pools")


def child(mode: str, model_name: str, batch: int, batches: int) -> dict:
    """Train ``batches`` batches on a second thread after one warm-up; the figures of ``mode``."""
    import resource
    import threading
    import time

    import torch

    from mpsl.models import build_model

    if mode == "two_pools":
        torch.randn(1 << 22).add_(1)  # one parallel loop on the main thread: its own pool
    model = build_model(model_name, 10, (3, 32, 32))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    found: dict = {}

    def train() -> None:
        for i in range(batches + 1):
            if i == 1:  # after the warm-up batch
                t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        found["ms_per_batch"] = wall * 1e3 / batches
        found["cores_busy"] = cpu / wall
        found["switches_per_batch"] = (r1.ru_nvcsw - r0.ru_nvcsw) / batches

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    return {"mode": mode, "threads": torch.get_num_threads(), **found}


def run(mode: str, a: argparse.Namespace) -> dict:
    """``child`` in a fresh interpreter: OpenMP pools live as long as their process."""
    args = [__file__, "--child", mode, "--model", a.model]
    args += ["--batch", str(a.batch), "--batches", str(a.batches)]
    return child_json(args, mode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=4, help="timed batches, after one warm-up")
    ap.add_argument("--model", default="resnet101_basic")
    ap.add_argument("--batch", type=int, default=64, help="samples per batch")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.model, a.batch, a.batches)))
        return
    if a.repeats < 1 or a.batches < 1:
        ap.error("--repeats and --batches must be at least 1")
    rows = [run(mode, a) for _ in range(a.repeats) for mode in MODES]
    pairs = zip(rows[::2], rows[1::2], strict=True)
    per_repeat = [two["ms_per_batch"] / one["ms_per_batch"] for one, two in pairs]
    data = {
        "benchmark": "openmp_pools",
        "model": a.model,
        "batch": a.batch,
        "rows": rows,
        "slowdown_per_repeat": per_repeat,
        "slowdown": statistics.median(per_repeat),
        "machine": machine(),
    }
    path = write("openmp_pools", data, a.out)
    if a.json:
        print(json.dumps(data, indent=1))
        return
    for r in rows:
        print(
            f"{r['mode']:9s} {r['ms_per_batch']:7.1f} ms/batch  cores busy {r['cores_busy']:.2f} "
            f"of {r['threads']}  {r['switches_per_batch']:6.0f} switches/batch"
        )
    print(f"slowdown two_pools/one_pool (median) {data['slowdown']:.2f}; written to {path}")


if __name__ == "__main__":
    main()
