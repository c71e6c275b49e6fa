"""MP-SL's own overhead: the same model, data and samples trained (a) as plain local training in
one process and (b) through the in-process MP-SL runtime with P = 4 parts; samples/s and ratio.

    python benchmarks/overhead.py [--json] [--out FILE] [--repeats 7] [--epochs 1]
                                  [--cuts planned|middle]

The pipeline adds no FLOPs: what it adds (scheduling, queues, copies, per-owner instances, FedAvg)
is ours. Workload of both sides: every data owner's share, in as many batches of the case's size,
for ``--epochs`` local epochs (default 1), one round.

Cuts (P = 4: the data owner keeps the first and the last layer, two compute nodes share the
rest): ``planned`` (default) is what a user of MP-SL does, ``mpsl plan`` on a profile measured on
this machine at one thread (every role of the threads engine computes with one), all roles on
device "here"; the planner balances the two compute nodes. ``middle`` cuts the middle layers at
their midpoint whatever they cost (ResNet-18's second node then carries two thirds of the work:
with a thread per role, that imbalance, not overhead, bounds the pipeline on two cores).

What each side times, after one untimed warm-up run of each:

- plain: one model trained over all the shares, one after the other, in the calling thread. It
  runs with torch's default intra-op threads and with 1, and keeps whichever is faster (the
  median): plain training gets its best setting. Outside the timer: copying the model, making the
  optimizer, slicing the shares.
- split loop (the floor): the same P parts, one instance of each per data owner with its own
  optimizer, trained in one plain loop in the calling thread with the best thread count of plain,
  the data owners taking turns batch by batch as they do in a round: per batch every part's
  forward, then from the last part to the first its backward and step, each part's input
  gradient handed to the part before. No roles, messages, queues or task log: what MP-SL's split
  costs by itself (three more autograd graphs, backward calls and optimizer steps per batch at
  P = 4; K instances of every part instead of one model), which no engine can avoid.
  ``split_ratio`` is its throughput over plain's, ``engine_share`` MP-SL's over the split loop's.
- MP-SL: ``RoundResult.seconds`` of ``InProcessEngine``: from the coordinator sending the global
  weights, through every data owner's batches on every part instance, to both FedAvg steps (the
  compute nodes' and the aggregator's) and the new global model installed. Events and memory
  accounting are on, as in every run. Twice: with ``mpsl run``'s default, cooperative scheduling
  (every role a greenlet of the calling thread, each task with torch's default threads): the
  ratio; and with a thread per role (``engine.share_cores``: 1 torch thread per role on 2 cores),
  reported beside it. Outside the timer: building the roles (their part instances included).
  Evaluation is off on both sides.

All three run in this process, alternately, ``--repeats`` times (7: on a shared 2-core machine
single runs vary by 20% and more); we report the median of each and the ratios. On Linux each run
first waits (up to 30 s) for other processes to go quiet.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import torch

from _common import busy_s, machine, write
from mpsl.data import load_dataset
from mpsl.data.synthetic import load_synthetic
from mpsl.emulate.calibrate import local_cluster
from mpsl.models import build_model
from mpsl.plan import make_plan
from mpsl.profile.measure import MeasureSettings, measure_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import SCHEDULING, InProcessEngine
from mpsl.runtime.setup import optimizer_factory, owner_shares, resolve_cuts
from mpsl.split import split_model
from mpsl.training.plain import train_steps
from mpsl.training.steps import batch_plan, loss_fn, torch_threads

CASES = [
    # (label, model, dataset, input shape, batch size, data owners)
    ("digits_cnn / digits (the demo)", "digits_cnn", "digits", (1, 8, 8), 16, 4),
    ("lenet5 / synthetic 1x28x28", "lenet5", "synthetic", (1, 28, 28), 64, 4),
    ("resnet18 / synthetic 3x32x32", "resnet18", "synthetic", (3, 32, 32), 32, 4),
]


def plain(cfg: RunConfig, dataset, model) -> tuple[float, int]:
    """Seconds and samples of plain training over every data owner's share, one model."""
    local = copy.deepcopy(model)
    opt = optimizer_factory(cfg)(local)
    data = owner_shares(cfg, dataset)
    start, samples = time.perf_counter(), 0
    for k, share in enumerate(data):
        batches = batch_plan(len(share), cfg.batch_size, cfg.batches_per_epoch, cfg.local_epochs, k)
        samples += train_steps(local, share, batches, opt)
    return time.perf_counter() - start, samples


def split_loop(cfg: RunConfig, dataset, model) -> tuple[float, int]:
    """Seconds and samples of the config's parts trained in one plain loop (see above)."""
    parts = split_model(copy.deepcopy(model), resolve_cuts(cfg, model.num_layers))
    make = optimizer_factory(cfg)
    owners = []
    for k, share in enumerate(owner_shares(cfg, dataset)):
        mine = [copy.deepcopy(p) for p in parts]
        batches = batch_plan(len(share), cfg.batch_size, cfg.batches_per_epoch, cfg.local_epochs, k)
        owners.append((mine, [make(p) for p in mine], share, batches))
    start, samples = time.perf_counter(), 0
    for b in range(max(len(o[3]) for o in owners)):
        for mine, optimizers, share, batches in owners:  # data owners take turns, as in a round
            if b < len(batches):
                samples += split_step(mine, optimizers, share, batches[b])
    return time.perf_counter() - start, samples


def split_step(parts: list, optimizers: list, data, idx) -> int:
    """One SGD step of a model cut into ``parts``: what the roles do for a batch, in one loop."""
    inputs, outputs = [], []
    h = data.x[idx]
    for i, part in enumerate(parts):
        z = h.detach().requires_grad_(True) if i else h
        h = part(z)
        inputs.append(z)
        outputs.append(h)
    loss = loss_fn(h, data.y[idx])
    loss.backward()
    float(loss.detach())  # a data owner reports its loss
    for i in reversed(range(len(parts))):
        if i < len(parts) - 1:
            outputs[i].backward(inputs[i + 1].grad)
        if optimizers[i] is not None:
            optimizers[i].step()
            optimizers[i].zero_grad(set_to_none=True)
    return len(idx)


def mpsl(cfg: RunConfig, dataset, model, scheduling: str) -> tuple[float, int]:
    """Seconds and samples of one MP-SL round (training only, aggregation included)."""
    engine = InProcessEngine(
        cfg, dataset=dataset, model=copy.deepcopy(model), evaluate=False, scheduling=scheduling
    )
    result = engine.run()
    return result.rounds[0].seconds, result.rounds[0].samples


def wait_quiet(limit_s: float = 30.0, window_s: float = 0.5) -> None:
    """Wait until other processes use under a tenth of a core, for at most ``limit_s``."""
    if busy_s() is None:
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before, own = busy_s() or 0.0, time.process_time()
        time.sleep(window_s)
        others = (busy_s() or 0.0) - before - (time.process_time() - own)
        if others < 0.1 * window_s:
            return


def planned_cuts(model: str, shape: tuple[int, ...], batch: int, owners: int) -> list[int]:
    """The planner's cuts for two compute nodes, from a profile measured here at one thread."""
    with torch_threads(1):
        profile = measure_model(
            model,
            batch,
            input_shape=shape,
            num_classes=10,
            device_name="here",
            settings=MeasureSettings(repeats=10, warmup=2),
        )
    s = profile.num_layers
    plan = make_plan(profile, local_cluster(owners, 2, batch, 1), 1, s - 1, hops=2)
    if not plan.feasible or plan.cuts is None:
        raise SystemExit(f"{model}: no plan for two compute nodes: {plan.reason}")
    return list(plan.cuts)


def measure(case: tuple, repeats: int, epochs: int, cut_choice: str) -> dict:
    label, model_name, ds_name, shape, batch, owners = case
    if ds_name == "synthetic":
        dataset = load_synthetic(shape, 10, train_size=owners * batch * 8, test_size=batch, seed=0)
    else:
        dataset = load_dataset(ds_name)
    model = build_model(model_name, 10, shape, seed=0)
    s = model.num_layers
    if cut_choice == "planned":
        cuts = planned_cuts(model_name, shape, batch, owners)
    else:
        cuts = [1, s // 2, s - 1]
    cfg = RunConfig(
        model=model_name,
        dataset="synthetic",
        data_owners=owners,
        batch_size=batch,
        local_epochs=epochs,
        rounds=1,
        cuts=cuts,
        seed=0,
    )  # P = 4
    default = torch.get_num_threads()
    settings = sorted({default, 1})
    plain(cfg, dataset, model)  # warm-up: allocator, kernels
    split_loop(cfg, dataset, model)
    for scheduling in SCHEDULING:
        mpsl(cfg, dataset, model, scheduling)
    runs: dict[str, list[float]] = {f"plain_{t}_threads": [] for t in settings}
    runs |= {f"split_{t}_threads": [] for t in settings}
    runs |= {f"mpsl_{s}": [] for s in SCHEDULING}
    for _ in range(repeats):
        for t in settings:
            with torch_threads(t):
                wait_quiet()
                seconds, samples = plain(cfg, dataset, model)
                runs[f"plain_{t}_threads"].append(samples / seconds)
                wait_quiet()
                seconds, samples = split_loop(cfg, dataset, model)
                runs[f"split_{t}_threads"].append(samples / seconds)
        for scheduling in SCHEDULING:
            wait_quiet()
            seconds, samples = mpsl(cfg, dataset, model, scheduling)
            runs[f"mpsl_{scheduling}"].append(samples / seconds)
    best = max(settings, key=lambda t: statistics.median(runs[f"plain_{t}_threads"]))
    p = statistics.median(runs[f"plain_{best}_threads"])
    f = statistics.median(runs[f"split_{best}_threads"])
    m = statistics.median(runs["mpsl_cooperative"])
    t = statistics.median(runs["mpsl_threads"])
    return {
        "case": label,
        "parts": 4,
        "cuts": cuts,
        "cut_choice": cut_choice,
        "data_owners": owners,
        "batch_size": batch,
        "local_epochs": epochs,
        "plain_threads": best,
        "plain_samples_per_s": p,
        "mpsl_samples_per_s": m,
        "ratio": m / p,
        "split_samples_per_s": f,
        "split_ratio": f / p,
        "engine_share": m / f,
        "threads_samples_per_s": t,
        "threads_ratio": t / p,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/overhead.json)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--cuts", choices=("planned", "middle"), default="planned", help="how to cut (see above)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="local epochs (both sides)")
    args = parser.parse_args()
    rows = []
    for case in CASES:
        rows.append(measure(case, args.repeats, args.epochs, args.cuts))
        if not args.json:
            r = rows[-1]
            spread = ", ".join(
                f"{name} {min(v):.0f}..{max(v):.0f}" for name, v in r["runs"].items()
            )
            print(
                f"{r['case']:34s} cuts {r['cuts']}  "
                f"plain {r['plain_samples_per_s']:9.1f} samples/s "
                f"({r['plain_threads']} thr)   MP-SL {r['mpsl_samples_per_s']:9.1f} samples/s   "
                f"ratio {r['ratio']:.2f} (threads engine {r['threads_ratio']:.2f}; split loop "
                f"{r['split_ratio']:.2f}, MP-SL/split loop {r['engine_share']:.2f})   [{spread}]",
                file=sys.stderr,
            )
    data = {"benchmark": "overhead", "goal": "ratio >= 0.8", "machine": machine(), "cases": rows}
    path = write("overhead", data, args.out)
    print(json.dumps(data, indent=1) if args.json else f"wrote {path}")


if __name__ == "__main__":
    main()
