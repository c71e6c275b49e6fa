"""MP-SL's own overhead: the same model, data and samples trained (a) as plain local training in
one process and (b) through the in-process MP-SL runtime with P = 4 parts; samples/s and ratio.

    python benchmarks/overhead.py [--json] [--out FILE] [--repeats 3]

The pipeline adds no FLOPs: what it adds (threads, queues, copies, per-owner instances) is ours.
Both sides run in this process, one after the other, repeated; we report the median of each.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import torch

from _common import machine, write
from mpsl.data import load_dataset, partition
from mpsl.data.synthetic import load_synthetic
from mpsl.models import build_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import LocalEngine, optimizer_factory
from mpsl.runtime.local import train_steps
from mpsl.runtime.training import batch_plan

CASES = [
    # (label, model, dataset, input shape, batch size, data owners)
    ("digits_cnn / digits (the demo)", "digits_cnn", "digits", (1, 8, 8), 16, 4),
    ("lenet5 / synthetic 1x28x28", "lenet5", "synthetic", (1, 28, 28), 64, 4),
    ("resnet18 / synthetic 3x32x32", "resnet18", "synthetic", (3, 32, 32), 32, 4),
]


def plain(cfg: RunConfig, dataset, model) -> tuple[float, int]:
    """Seconds and samples of plain training over every data owner's share, one model."""
    shares = partition(dataset.train.y.numpy(), cfg.data_owners, cfg.partition, cfg.alpha, cfg.seed)
    local = copy.deepcopy(model)
    opt = optimizer_factory(cfg)(local)
    start, samples = time.perf_counter(), 0
    for k, idx in enumerate(shares):
        data = dataset.train.subset(torch.from_numpy(idx))
        batches = batch_plan(len(data), cfg.batch_size, cfg.batches_per_epoch, cfg.local_epochs, k)
        samples += train_steps(local, data, batches, opt)
    return time.perf_counter() - start, samples


def mpsl(cfg: RunConfig, dataset, model) -> tuple[float, int]:
    """Seconds and samples of one MP-SL round (training only, aggregation included)."""
    result = LocalEngine(cfg, dataset=dataset, model=copy.deepcopy(model)).run()
    return result.rounds[0].seconds, result.rounds[0].samples


def measure(case: tuple, repeats: int) -> dict:
    label, model_name, ds_name, shape, batch, owners = case
    if ds_name == "synthetic":
        dataset = load_synthetic(shape, 10, train_size=owners * batch * 8, test_size=batch, seed=0)
    else:
        dataset = load_dataset(ds_name)
    model = build_model(model_name, 10, shape, seed=0)
    s = model.num_layers
    cfg = RunConfig(
        model=model_name,
        dataset="synthetic",
        data_owners=owners,
        batch_size=batch,
        local_epochs=1,
        rounds=1,
        cuts=[1, s // 2, s - 1],
        seed=0,
    )  # P = 4
    plain(cfg, dataset, model)  # warm-up: allocator, kernels
    runs = {"plain": [], "mpsl": []}
    for _ in range(repeats):
        for name, fn in (("plain", plain), ("mpsl", mpsl)):
            seconds, samples = fn(cfg, dataset, model)
            runs[name].append(samples / seconds)
    p, m = statistics.median(runs["plain"]), statistics.median(runs["mpsl"])
    return {
        "case": label,
        "parts": 4,
        "data_owners": owners,
        "batch_size": batch,
        "plain_samples_per_s": p,
        "mpsl_samples_per_s": m,
        "ratio": m / p,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/overhead.json)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for case in CASES:
        rows.append(measure(case, args.repeats))
        if not args.json:
            r = rows[-1]
            print(
                f"{r['case']:34s} plain {r['plain_samples_per_s']:9.1f} samples/s   "
                f"MP-SL {r['mpsl_samples_per_s']:9.1f} samples/s   ratio {r['ratio']:.2f}",
                file=sys.stderr,
            )
    data = {"benchmark": "overhead", "goal": "ratio >= 0.8", "machine": machine(), "cases": rows}
    path = write("overhead", data, args.out)
    print(json.dumps(data, indent=1) if args.json else f"wrote {path}")


if __name__ == "__main__":
    main()
