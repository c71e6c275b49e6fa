"""The estimators on real compute: profile a small model on this machine, predict a round and the
compute nodes' memory, then train the same round for real and compare.

    python benchmarks/real_compute.py [--json] [--out FILE] [--pairs 5]

Round time: the estimate adds to the layers' profiled times one per-task overhead of the runtime,
measured once at the start on its own calibration workload (``mpsl.emulate.calibrate``: digits_cnn,
not one of the cases), so nothing is fitted to the cases judged here; the layers-only estimate is
reported beside it. Profiles, calibration and runs all use torch's default thread count. The runs
use ``mpsl run``'s cooperative scheduling (every role takes turns on this machine, one task at a
time), so the simulation runs with every role on one shared core (``cores=1``); the estimate with
every role on its own device ("roles apart") and the closed form are reported too.

This machine is shared: its speed drifts by tens of percent between seconds (the same LeNet-5
profile summed to 2.8-5.2 ms within a minute). So each case takes ``--pairs`` pairs of a profile
and, right after it, a run (one warm-up round, one timed round); the figures are the medians of
the pairs' estimates and of their measured rounds (each pair's own error is reported too).

Memory: the runtime counts the tensor bytes each compute node holds (instances' weights, buffers,
optimizer state, one instance's gradients, the activations autograd saved); the estimate
(``mpsl.estimate.memory``) is K x (weights + buffers + optimizer state) + one instance's gradients
+ the activations autograd saves per batch (profiled per layer) for K batches in flight, the most
there can be. Also reported: the estimate with as many batches in flight as the simulation has at
the node, and how many were in flight at the measured peak (measured bytes less the estimated
state, over the estimated bytes per batch).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from _common import machine, write
from mpsl.emulate.calibrate import (
    TaskOverhead,
    local_cluster,
    measure_task_overhead,
    synthetic_run,
    with_task_overhead,
)
from mpsl.estimate.closed_form import multihop
from mpsl.estimate.costs import pipeline_costs
from mpsl.estimate.memory import node_memory_bytes, part_activation_bytes
from mpsl.estimate.simulate import simulate
from mpsl.profile.measure import MeasureSettings, measure_model
from mpsl.split import part_ranges

CASES = [
    # model, input shape, batch, data owners, cuts, batches per epoch
    ("lenet5", (1, 28, 28), 64, 1, [1, 3, 5], 24),
    ("lenet5", (1, 28, 28), 64, 4, [1, 3, 5], 12),
    ("resnet18", (3, 32, 32), 32, 1, [2, 6, 10], 6),
    ("resnet18", (3, 32, 32), 32, 4, [2, 6, 10], 4),
]
SETTINGS = MeasureSettings(repeats=20, warmup=3)


def case(
    model: str,
    shape: tuple[int, ...],
    batch: int,
    owners: int,
    cuts: list[int],
    batches: int,
    overhead: TaskOverhead,
    pairs: int,
) -> dict:
    """Profile, estimate, train for real, compare; ``pairs`` times, one right after the other."""
    c = local_cluster(owners, len(cuts) - 1, batch, batches)
    estimates: dict[str, list[float]] = {"sim": [], "closed": [], "layers_only": [], "apart": []}
    measured = []
    for _ in range(pairs):
        profile = measure_model(
            model, batch, input_shape=shape, num_classes=10, device_name="here", settings=SETTINGS
        )
        costs = pipeline_costs(with_task_overhead(profile, "here", overhead.ms), c, cuts)
        # In-process roles take turns on this machine (cooperative scheduling): one task at a time.
        sim = simulate(costs, cores=1)
        estimates["sim"].append(sim.round_ms / 1000)
        estimates["closed"].append(multihop(costs).round_ms / 1000)
        layers_only = simulate(pipeline_costs(profile, c, cuts), cores=1)
        estimates["layers_only"].append(layers_only.round_ms / 1000)
        estimates["apart"].append(simulate(costs).round_ms / 1000)
        result = synthetic_run(model, shape, batch, owners, cuts, batches, lr=0.01)
        measured.append(result.rounds[1].seconds)  # after a round that warms threads, allocator
    measured_s = statistics.median(measured)
    est = {k: statistics.median(v) for k, v in estimates.items()}
    memory = {}
    for i, (first, last) in enumerate(part_ranges(cuts, profile.num_layers)[1:-1]):
        name = f"node{i + 1}"
        est_bytes = node_memory_bytes(profile, first, last, owners)
        sim_in_flight = sim.nodes[i].max_in_flight
        sim_est = node_memory_bytes(profile, first, last, owners, in_flight=sim_in_flight)
        per_batch = part_activation_bytes(profile, first, last)
        state = node_memory_bytes(profile, first, last, owners, in_flight=0)
        got = result.peak_memory_bytes[name]
        memory[name] = {
            "measured_bytes": got,
            "estimated_bytes": est_bytes,
            "error": (est_bytes - got) / got,
            "measured_in_flight": (got - state) / per_batch if per_batch else None,
            "sim_in_flight": sim_in_flight,
            "sim_in_flight_bytes": sim_est,
            "sim_in_flight_error": (sim_est - got) / got,
        }

    def error(estimate_s: float) -> float:
        return (estimate_s - measured_s) / measured_s

    return {
        "model": model,
        "batch_size": batch,
        "data_owners": owners,
        "cuts": cuts,
        "batches_per_round": batches,
        "pairs": pairs,
        "measured_round_s": measured_s,
        "measured_round_s_per_pair": measured,
        "sim_error_per_pair": [
            (e - m) / m for e, m in zip(estimates["sim"], measured, strict=True)
        ],
        "sim_round_s": est["sim"],
        "sim_error": error(est["sim"]),
        "closed_round_s": est["closed"],
        "closed_error": error(est["closed"]),
        "sim_layers_only_round_s": est["layers_only"],
        "sim_layers_only_error": error(est["layers_only"]),
        "sim_apart_round_s": est["apart"],
        "sim_apart_error": error(est["apart"]),
        "memory": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/real_compute.json)")
    parser.add_argument("--pairs", type=int, default=5, help="profile-and-run pairs per case")
    args = parser.parse_args()
    overhead = measure_task_overhead(settings=SETTINGS)
    if not args.json:
        spread = ", ".join(f"{x:.3f}" for x in overhead.per_pair_ms)
        print(f"runtime overhead per task: {overhead.ms:.3f} ms ({spread})", file=sys.stderr)
    rows = []
    for c in CASES:
        rows.append(case(*c, overhead=overhead, pairs=args.pairs))
        r = rows[-1]
        if not args.json:
            lo, hi = min(r["sim_error_per_pair"]), max(r["sim_error_per_pair"])
            mem = ", ".join(
                f"{n} {m['error']:+.1%} ({m['measured_in_flight']:.2g} of K in flight)"
                for n, m in r["memory"].items()
            )
            print(
                f"{r['model']:8s} K={r['data_owners']}  measured {r['measured_round_s']:.3f} s  "
                f"sim {r['sim_round_s']:.3f} s ({r['sim_error']:+.1%}; pairs {lo:+.0%}..{hi:+.0%}; "
                f"layers only {r['sim_layers_only_error']:+.1%}; "
                f"roles apart {r['sim_apart_error']:+.1%})  "
                f"closed {r['closed_round_s']:.3f} s ({r['closed_error']:+.1%})  "
                f"memory est. vs measured: {mem}",
                file=sys.stderr,
            )
    data = {
        "benchmark": "real_compute",
        "goal": "round time and memory within 15%",
        "machine": machine(),
        "task_overhead_ms": overhead.ms,
        "task_overhead_per_pair_ms": list(overhead.per_pair_ms),
        "cases": rows,
    }
    path = write("real_compute", data, args.out)
    print(json.dumps(data, indent=1) if args.json else f"wrote {path}")


if __name__ == "__main__":
    main()
