"""The networked pipeline against plain training: ms per batch, and where each member's time goes.

    python benchmarks/deployment.py [--json] [--out FILE] [--repeats 2] [--batches 4]
                                    [--threads 1,auto] [--cases resnet101,demo]

Each case trains the same model on the same data two ways, in one run, taking turns within each
repeat (a noisy neighbour hits both alike):

- plain: the whole model in this process, one SGD step per batch over the data owners' shares
  (``mpsl.training.plain.train_steps``). After ``--batches`` untimed warm-up batches it times K x
  ``--batches`` batches, with torch's default threads and with one, and keeps the faster (as
  benchmarks/overhead.py does): plain_ms_per_batch. On a machine shared with other work, one
  thread can be far faster (torch's parallel loops wait for their slowest thread).
- processes: ``mpsl run --engine processes`` (``deploy.launch.run_processes``): every member its own
  process, sealed (AES-256-GCM under CURVE-exchanged keys) over loopback, each member with the torch
  threads of each ``--threads`` setting (``auto``: ``deploy.threads.member_threads``, what the
  launcher does by default; a number: every member that many). Two rounds of one local epoch of
  ``--batches`` batches each; round 0 warms up (first-touch memory, connections), round 1 is timed
  from the first task's start to the last training task's end, over its K x ``--batches`` batches:
  processes_ms_per_batch. Process start, model building and evaluation are outside.

ratio = plain / processes (1.0: the pipeline as fast as one process). The time split per member
comes from the run's task records (what events.jsonl holds), round 1 only: ``compute`` is the sum
of the member's task times; ``transfer`` the time from the end of the task whose output a task
needs (the one before it on the chain: data owner's first part, node 1, ..., node N, data
owner's last part, node N, ..., node 1, data owner) to that task's start, when the member was
free (so the message was on the way: encode, encryption, loopback, decode, hand-off); ``waiting``
the rest of the round (nothing for the member to do). ``busy_cores``: the cores this machine
kept busy on average during the measurement (/proc/stat; this benchmark's own processes
included, so up to the cores they use; for processes over the whole run, start-up too): any
more is other processes, and on a shared machine the figures are as good as that excess is small.

Cases: ``resnet101``, the configuration of issue 21 (resnet101_basic, synthetic 3x32x32, batch
128, SGD lr 0.01 momentum 0.9 weight decay 1e-4, 1 data owner, cuts 3,13,19); ``demo``, what
``make demo`` runs (digits_cnn on the digits, 4 data owners, 2 compute nodes, batch 16).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from _common import busy_s, machine, write
from mpsl.deploy.coordinator import DeploymentCoordinator
from mpsl.deploy.launch import run_processes
from mpsl.deploy.threads import host_cores, member_threads
from mpsl.runtime.config import RunConfig
from mpsl.runtime.setup import RunSetup, optimizer_factory
from mpsl.tasks import TaskKind, TaskRecord, owner_endpoint
from mpsl.training.plain import train_steps
from mpsl.training.steps import batch_plan, torch_threads

CASES: dict[str, dict[str, Any]] = {
    "resnet101": {
        "model": "resnet101_basic",
        "dataset": "synthetic",
        "input_shape": [3, 32, 32],
        "batch_size": 128,
        "lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "data_owners": 1,
        "cuts": [3, 13, 19],
    },
    "demo": {"model": "digits_cnn", "dataset": "digits", "data_owners": 4, "batch_size": 16},
}
TRAINING = (TaskKind.FIRST_FWD, TaskKind.FWD, TaskKind.LAST, TaskKind.BWD, TaskKind.FIRST_BWD)


def config_of(case: str, batches: int) -> RunConfig:
    """The case's run: two rounds of one local epoch of ``batches`` batches, seed 0."""
    values = CASES[case] | {"rounds": 2, "local_epochs": 1, "batches_per_epoch": batches}
    return RunConfig.from_values(values, f"case {case}")


def plain(cfg: RunConfig, setup: RunSetup) -> dict[str, Any]:
    """Milliseconds per batch of plain training of the whole model after a warm-up, with torch's
    default threads and with one; the faster is ``ms_per_batch``."""
    model = setup.model
    opt = optimizer_factory(cfg)(model)
    share = setup.owner_shares()[0]
    assert cfg.batches_per_epoch is not None
    warm = batch_plan(len(share), cfg.batch_size, cfg.batches_per_epoch, 1, 0)
    timed = batch_plan(len(share), cfg.batch_size, cfg.batches_per_epoch * cfg.data_owners, 1, 1)
    train_steps(model, share, warm, opt)
    found: dict[str, Any] = {}
    for threads in dict.fromkeys((torch.get_num_threads(), 1)):
        with torch_threads(threads):
            before, start = busy_s(), time.perf_counter()
            train_steps(model, share, timed, opt)
            seconds = time.perf_counter() - start
        found[f"threads_{threads}"] = {"ms_per_batch": seconds * 1e3 / len(timed)}
        found[f"threads_{threads}"] |= _busy(before, seconds)
    best = min(found, key=lambda k: found[k]["ms_per_batch"])
    return {"ms_per_batch": found[best]["ms_per_batch"], "best": best, **found}


def processes(cfg: RunConfig, threads: int) -> list[TaskRecord]:
    """The task records of a run with every member a process computing with ``threads``."""
    deployment = DeploymentCoordinator(cfg, wait_s=120.0)
    run_processes(deployment, threads=threads)
    return deployment.events.records


def chain(nodes: list[str], owner: str) -> list[tuple[str, TaskKind]]:
    """Who runs what, in order, for one batch of ``owner``: each task needs the one before."""
    down = [(n, TaskKind.FWD) for n in nodes]
    up = [(n, TaskKind.BWD) for n in reversed(nodes)]
    return [
        (owner, TaskKind.FIRST_FWD),
        *down,
        (owner, TaskKind.LAST),
        *up,
        (owner, TaskKind.FIRST_BWD),
    ]


def split(records: list[TaskRecord], nodes: list[str], owners: int, round_: int) -> dict[str, Any]:
    """Round ``round_``'s span per batch, and each member's compute, transfer and waiting."""
    mine = [r for r in records if r.round == round_ and r.kind in TRAINING]
    start, end = min(r.start for r in mine), max(r.end for r in mine)
    by_task = {(r.node, r.kind, r.owner, r.batch): r for r in mine}
    members: dict[str, dict[str, float]] = {}
    for node in dict.fromkeys(r.node for r in mine):
        tasks = sorted((r for r in mine if r.node == node), key=lambda r: r.start)
        compute = sum(r.end - r.start for r in tasks)
        transfer, free = 0.0, start
        for r in tasks:
            steps = chain(nodes, owner_endpoint(r.owner))
            at = steps.index((r.node, r.kind))
            before = by_task.get((*steps[at - 1], r.owner, r.batch)) if at else None
            if before is not None:
                transfer += max(0.0, r.start - max(before.end, free))
            free = r.end
        members[node] = {
            "compute_ms": compute * 1e3,
            "transfer_ms": transfer * 1e3,
            "waiting_ms": (end - start - compute - transfer) * 1e3,
        }
    batches = len({(r.owner, r.batch) for r in mine})
    return {"ms_per_batch": (end - start) * 1e3 / batches, "batches": batches, "members": members}


def measure(case: str, batches: int, repeats: int, settings: list[str]) -> dict[str, Any]:
    """Plain and processes (each thread setting), taking turns ``repeats`` times."""
    cfg = config_of(case, batches)
    setup = RunSetup.build(cfg)
    nodes = list(setup.layout.nodes)
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], **{s: [] for s in settings}}
    for _ in range(repeats):
        runs["plain"].append(plain(cfg, RunSetup.build(cfg)))
        for s in settings:
            threads = member_threads(cfg, len(nodes)) if s == "auto" else int(s)
            before, t0 = busy_s(), time.perf_counter()
            found = split(processes(cfg, threads), nodes, cfg.data_owners, round_=1)
            wall = time.perf_counter() - t0
            runs[s].append({**found, "threads": threads, **_busy(before, wall)})
    return summary(case, cfg, runs, settings)


def _busy(before: float | None, wall_s: float) -> dict[str, float]:
    """Cores of the machine busy on average over the last ``wall_s`` seconds."""
    after = busy_s()
    if before is None or after is None:
        return {}
    return {"busy_cores": (after - before) / wall_s}


def summary(case: str, cfg: RunConfig, runs: dict[str, Any], settings: list[str]) -> dict[str, Any]:
    """Medians over repeats; the headline is the launcher's default (``auto``) or the last."""
    plain_ms = statistics.median(r["ms_per_batch"] for r in runs["plain"])
    by_setting = {}
    for s in settings:
        ms = statistics.median(r["ms_per_batch"] for r in runs[s])
        by_setting[s] = {
            "threads": runs[s][0]["threads"],
            "processes_ms_per_batch": ms,
            "ratio": plain_ms / ms,
            "ratio_per_repeat": [
                p["ms_per_batch"] / r["ms_per_batch"]
                for p, r in zip(runs["plain"], runs[s], strict=True)
            ],
            "members": _median_members(runs[s]),
        }
    head = by_setting["auto" if "auto" in by_setting else settings[-1]]
    return {
        "case": case,
        "config": cfg.model_dump(exclude_defaults=True),
        "plain_ms_per_batch": plain_ms,
        "processes_ms_per_batch": head["processes_ms_per_batch"],
        "ratio": head["ratio"],
        "threads": head["threads"],
        "settings": by_setting,
        "runs": runs,
    }


def _median_members(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    members = runs[0]["members"]
    return {
        m: {k: statistics.median(r["members"][m][k] for r in runs) for k in members[m]}
        for m in members
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/deployment.json)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batches", type=int, default=4, help="batches per data owner and round")
    parser.add_argument("--threads", default="1,auto", help="member thread settings to compare")
    parser.add_argument("--cases", default="resnet101,demo", help=f"of {', '.join(CASES)}")
    args = parser.parse_args()
    settings = args.threads.split(",")
    cases = args.cases.split(",")
    if args.repeats < 1 or args.batches < 1:
        parser.error("--repeats and --batches must be at least 1")
    if bad := [c for c in cases if c not in CASES]:
        parser.error(f"unknown case {bad[0]}; choose from {', '.join(CASES)}")
    if bad := [s for s in settings if s != "auto" and not (s.isdigit() and int(s) > 0)]:
        parser.error(f"--threads: '{bad[0]}' is neither auto nor a positive count")
    results = [measure(c, args.batches, args.repeats, settings) for c in cases]
    data = {
        "benchmark": "deployment",
        "goal": "ratio >= 0.9 for resnet101 (encryption on)",
        "cores": host_cores(),
        "plain_torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "batches": args.batches,
        "cases": results,
        "machine": machine(),
    }
    if not args.json:
        for c in results:
            best = c["runs"]["plain"][0]["best"]
            print(
                f"{c['case']}: plain {c['plain_ms_per_batch']:.1f} ms/batch (first repeat's "
                f"best: {best})",
                file=sys.stderr,
            )
            for s, v in c["settings"].items():
                print(
                    f"  processes, threads {s} ({v['threads']}): "
                    f"{v['processes_ms_per_batch']:.1f} ms/batch, ratio {v['ratio']:.2f}",
                    file=sys.stderr,
                )
                for m, t in v["members"].items():
                    print(
                        f"    {m:10s} compute {t['compute_ms']:8.1f}  transfer "
                        f"{t['transfer_ms']:7.1f}  waiting {t['waiting_ms']:8.1f} ms",
                        file=sys.stderr,
                    )
    path = write("deployment", data, args.out)
    print(json.dumps(data, indent=1) if args.json else f"wrote {path}")


if __name__ == "__main__":
    main()
