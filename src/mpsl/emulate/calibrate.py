"""The runtime's per-task overhead on this machine: a term of the estimates, measured once.

The profiler times each layer alone, over and over in one thread. A task of the in-process runtime
pays more than its layers: the hand-off of its message from another role, the role's bookkeeping
(messages, the task log, counting saved activations), and running on data another role produced
(colder caches, fresh allocations). ``measure_task_overhead``
runs the real runtime on one fixed calibration workload (``digits_cnn``, batch 32, one data owner,
two compute nodes, instant links), profiles the same model the way ``mpsl profile`` does, and
spreads the difference between the measured round and the estimated one over the round's tasks.
The workload is fixed, so the term is never fitted to the deployments it then helps predict. Store
it in a profile with ``with_task_overhead``; the estimators add it to every task on that device.

A shared machine's speed drifts by tens of percent from one second to the next, so a profile and a
round measured seconds apart disagree by that much whatever the runtime does. The calibration
therefore takes pairs: a profile, then right after it a run (one warm-up round, one timed round);
each pair gives one value, and the term is their median.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mpsl.cluster import Cluster
from mpsl.data.synthetic import load_synthetic
from mpsl.estimate.costs import pipeline_costs
from mpsl.estimate.simulate import simulate
from mpsl.models import build_model
from mpsl.profile.format import Profile
from mpsl.profile.measure import MeasureSettings, measure_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine, RunResult

MODEL, SHAPE, BATCH, CUTS = "digits_cnn", (1, 8, 8), 32, (1, 3, 5)


@dataclass(frozen=True)
class TaskOverhead:
    """Per-task overhead (ms): the median over the pairs, and each pair's value."""

    ms: float
    per_pair_ms: tuple[float, ...]
    tasks_per_round: int


def local_cluster(owners: int, nodes: int, batch: int, batches: int) -> Cluster:
    """This machine as a cluster: every role on device ``here``, instant links (in-process
    messages cost nothing beyond the per-task overhead); ``batches`` per local epoch."""
    return Cluster.model_validate(
        {
            "data_owners": [
                {"count": owners, "device": "here", "memory_bytes": 1e10, "link_bps": 1e15}
            ],
            "compute_nodes": [
                {"name": f"node{i + 1}", "device": "here", "memory_bytes": 1e10}
                for i in range(nodes)
            ],
            "links": {"compute_to_compute_bps": 1e15},
            "training": {"batch_size": batch, "batches_per_epoch": batches, "local_epochs": 1},
        }
    )


def measure_task_overhead(
    *,
    batches: int = 60,
    pairs: int = 5,
    threads: int | None = None,
    settings: MeasureSettings | None = None,
    seed: int = 0,
) -> TaskOverhead:
    """Run the calibration workload and return the runtime's overhead per task.

    ``pairs``: profile-then-run pairs, each giving one value. ``threads``: torch CPU threads for
    profiling and training (default: leave as is).
    """
    if pairs < 1:
        raise ValueError(f"need at least 1 pair of a profile and a run; got {pairs}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    tasks = batches * (3 + 2 * (len(CUTS) - 1))
    per_pair = []
    try:
        for _ in range(pairs):
            profile = measure_model(
                MODEL, BATCH, input_shape=SHAPE, device_name="here", settings=settings
            )
            costs = pipeline_costs(profile, local_cluster(1, len(CUTS) - 1, BATCH, batches), CUTS)
            measured_ms = _timed_round_s(batches, seed) * 1000
            per_pair.append((measured_ms - simulate(costs).round_ms) / tasks)
    finally:
        torch.set_num_threads(previous)
    return TaskOverhead(max(0.0, statistics.median(per_pair)), tuple(per_pair), tasks)


def _timed_round_s(batches: int, seed: int) -> float:
    """Seconds of the calibration workload's second round (the first warms up)."""
    result = synthetic_run(MODEL, SHAPE, BATCH, 1, CUTS, batches, seed=seed)
    return result.rounds[1].seconds


def synthetic_run(
    model: str,
    shape: Sequence[int],
    batch: int,
    owners: int,
    cuts: Sequence[int],
    batches: int,
    *,
    rounds: int = 2,
    lr: float | None = None,
    seed: int = 0,
) -> RunResult:
    """``rounds`` in-process rounds of ``model`` on synthetic data, ``batches`` per data owner."""
    data = load_synthetic(
        tuple(shape), 10, train_size=owners * batch * batches, test_size=batch, seed=seed
    )
    values: dict[str, object] = {
        "model": model,
        "dataset": "synthetic",
        "input_shape": list(shape),
        "data_owners": owners,
        "cuts": list(cuts),
        "rounds": rounds,
        "local_epochs": 1,
        "batches_per_epoch": batches,
        "batch_size": batch,
        "seed": seed,
    }
    if lr is not None:
        values["lr"] = lr
    config = RunConfig.model_validate(values)
    chain = build_model(model, 10, tuple(shape), seed=seed)
    return InProcessEngine(config, dataset=data, model=chain, evaluate=False).run()


def with_task_overhead(profile: Profile, device: str, ms: float) -> Profile:
    """``profile`` with ``ms`` of runtime overhead per task on ``device``."""
    return profile.model_copy(
        update={"task_overhead_ms": {**(profile.task_overhead_ms or {}), device: ms}}
    )
