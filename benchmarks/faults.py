"""Fault injection on loopback processes: what a deployment does when a member dies, freezes or is
told to stop, and what it leaves behind.

    python benchmarks/faults.py [--json PATH] [--quick] [--deadline 120] [--keep]

Every scenario launches a real deployment with the ``mpsl`` CLI on 127.0.0.1 (``python -m mpsl
coordinator --insecure --heartbeat-timeout 5`` and ``compute-node`` node1, node2, ``aggregator``,
``data-owner`` owner1..owner3 with --threads 1, each its own process group), or the launcher
``mpsl run --engine processes --heartbeat-timeout 5`` (which starts the members itself,
encrypted). The run is small (digits, K=3, N=2, a few hundred milliseconds a round on two cores).
Once round 2 has completed (``checkpoints/round-NNNN`` with NNNN >= 2 appears in the run
directory) the fault is injected into its target: SIGKILL, SIGSTOP (frozen until cleanup, never
continued) or SIGTERM; "restart" kills owner2 and starts a fresh ``data-owner --name owner2`` 2 s
later.

Figures per scenario (the JSON has them all, the table the main ones):

- detected_s, detected_by: from the fault to the first reaction. A fault of a member: the
  coordinator exited, or a line of its stderr written after the fault names the member. SIGKILL or
  SIGSTOP of the coordinator: a member exited or logged a line naming the coordinator. SIGTERM of
  the coordinator: it exited or logged a line naming itself (its "interrupted" message). The
  launcher's members write to its stderr, so their lines count as the launcher's.
- settled_s: from the fault until every process (but a frozen one) had exited; exit_after_s: the
  same per process; fault_at_s and run_s: the fault and the coordinator's exit, from the launch.
- exit_codes: every process's return code (negative: killed by that signal; 128 + N: stopped by
  signal N; "alive": still running when measured, so a frozen target; a launcher's members are
  not our children, so only "exited" is known of them).
- rounds_completed: rounds in DIR/summary.json if the run wrote one, else the highest checkpoint.
- rounds_lost: rounds checkpointed when the fault came that the last checkpoint does not hold.
- final_accuracy (summary.json's last round) and accuracy_vs_baseline, its difference to the
  baseline's; samples_per_round (fewer than the baseline's: a data owner was left out).
- dropped, absent: the "dropped" and "absent" fields of summary.json's rounds (data owners that
  left during the round, and those that sat it out), where the runtime records them.
- leftover_processes: processes (but a frozen target) still alive CLEANUP_GRACE_S after the run
  ended (the coordinator exited; for SIGKILL or SIGSTOP of the coordinator, the fault), or at the
  deadline; then every process group is killed.
- leftover_files: ``mpsl-keys-*`` entries left in the scenario's temporary directory (every
  process runs with TMPDIR set to a directory of its own, so another program's files never count;
  anything else left there is under other_tmp_entries).
- coordinator_warnings: its last warning and error lines (the launcher's: its members' too).

A scenario that has not ended by ``--deadline`` seconds after its start is killed and marked
timed_out. Nothing here asserts on times: it measures. The scenarios run one after another.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import machine, write

COORDINATOR = "coordinator"
NODES = ("node1", "node2")
OWNERS = ("owner1", "owner2", "owner3")
ROLES = {"node1": "compute-node", "node2": "compute-node", "aggregator": "aggregator"}
ROLES |= {owner: "data-owner" for owner in OWNERS}  # every member's name and role
HEARTBEAT_TIMEOUT_S = 5.0
FAULT_AFTER_ROUND = 2
RESTART_AFTER_S = 2.0
CLEANUP_GRACE_S = 15.0
POLL_S = 0.05


@dataclass(frozen=True)
class Size:
    """The run every scenario trains."""

    rounds: int
    batches_per_epoch: int = 12

    def options(self) -> list[str]:
        """The run options of ``mpsl coordinator`` and ``mpsl run``."""
        return [
            "--dataset", "digits", "--data-owners", str(len(OWNERS)),
            "--compute-nodes", str(len(NODES)), "--rounds", str(self.rounds),
            "--local-epochs", "1", "--batches-per-epoch", str(self.batches_per_epoch),
            "--batch-size", "16", "--seed", "1",
        ]  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """A fault: which process gets which signal once round 2 has completed."""

    name: str
    target: str | None = None  # a member's name, COORDINATOR (the launcher in a launcher run)
    signum: signal.Signals | None = None
    restart: bool = False  # start a fresh target RESTART_AFTER_S after the fault
    launcher: bool = False  # mpsl run --engine processes instead of a deployment


def scenarios() -> list[Scenario]:
    """The matrix, baseline first."""
    kill, stop, term = signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM
    matrix = [Scenario("baseline")]
    for target in ("owner2", "node1", "aggregator", COORDINATOR):
        matrix.append(Scenario(f"kill {target}", target, kill))
        matrix.append(Scenario(f"stop {target}", target, stop))
    matrix += [
        Scenario("term coordinator", COORDINATOR, term),
        Scenario("term owner2", "owner2", term),
        Scenario("restart owner2", "owner2", kill, restart=True),
        Scenario("launcher: baseline", launcher=True),
        Scenario("launcher: term launcher", COORDINATOR, term, launcher=True),
        Scenario("launcher: kill owner2", "owner2", kill, launcher=True),
    ]
    return matrix


@dataclass
class Result:
    """What one scenario measured."""

    scenario: str
    target: str | None
    signal: str | None
    fault_injected: bool = False
    fault_after_round: int | None = None  # the highest checkpoint when the fault came
    fault_at_s: float | None = None  # from the launch
    run_s: float | None = None  # from the launch until the coordinator (launcher) exited
    detected_s: float | None = None
    detected_by: str | None = None
    settled_s: float | None = None
    exit_codes: dict[str, int | str | None] = field(default_factory=dict)
    exit_after_s: dict[str, float | None] = field(default_factory=dict)  # from the fault
    rounds_completed: int = 0
    rounds_lost: int | None = None
    final_accuracy: float | None = None
    accuracy_vs_baseline: float | None = None
    dropped: list[Any] | None = None
    absent: list[Any] | None = None  # summary.json's data owners that sat a round out
    samples_per_round: list[int | None] = field(default_factory=list)  # fewer: an owner was out
    leftover_processes: list[str] = field(default_factory=list)
    leftover_files: list[str] = field(default_factory=list)
    other_tmp_entries: list[str] = field(default_factory=list)  # the rest left in its TMPDIR
    timed_out: bool = False
    wall_s: float = 0.0
    coordinator_tail: list[str] = field(default_factory=list)  # its last stderr lines
    coordinator_warnings: list[str] = field(default_factory=list)  # its last warnings, errors
    error: str | None = None  # what went wrong in the benchmark itself


# ---- processes ---------------------------------------------------------------------------------


@dataclass
class Proc:
    """A process of the deployment: our child, or a member the launcher started."""

    name: str
    pid: int
    popen: subprocess.Popen[bytes] | None  # None: the launcher's child, not ours
    err: Path  # where its stderr goes
    start_ticks: int | None = None  # /proc start time, against pid reuse (not our children)
    exited_at: float | None = None

    def alive(self) -> bool:
        """Whether it still runs (a frozen process does; a zombie does not)."""
        if self.popen is not None:
            return self.popen.poll() is None
        stat = _stat(self.pid)
        return stat is not None and stat[1] == self.start_ticks and stat[0] != "Z"

    def code(self) -> int | str | None:
        """Its return code, "alive", or "exited" where it is not our child."""
        if self.alive():
            return "alive"
        return self.popen.returncode if self.popen is not None else "exited"


def _stat(pid: int) -> tuple[str, int] | None:
    """State letter and start time of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:
            continue
    return found


def _member_name(pid: int) -> str | None:
    """The --name of an ``mpsl`` member process, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    return argv[argv.index("--name") + 1] if "--name" in argv[:-1] else None


def _free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    """The processes of one scenario, their logs, run directory and temporary directory."""

    def __init__(self, root: Path, size: Size, launcher: bool) -> None:
        self.root, self.size, self.launcher = root, size, launcher
        self.out = root / "run"
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs: list[Proc] = []
        # COLUMNS: the report's lines unwrapped in the logs.
        self.env = {
            **os.environ,
            "TMPDIR": str(self.tmp),
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
        self.watchers: list[Callable[[], object]] = []  # called at every poll
        self.started = time.monotonic()  # the launch

    def spawn(self, name: str, args: list[str]) -> Proc:
        """Start ``python -m mpsl ARGS`` in a session of its own, stdout and stderr to files."""
        label = name if not any(p.name == name for p in self.procs) else f"{name}#2"
        err = self.root / f"{label}.err"
        with (self.root / f"{label}.out").open("wb") as out, err.open("wb") as errf:
            popen = subprocess.Popen(
                [sys.executable, "-m", "mpsl", *args],
                stdout=out,
                stderr=errf,
                cwd=self.root,
                env=self.env,
                start_new_session=True,
            )
        proc = Proc(label, popen.pid, popen, err)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        """The coordinator (or launcher) and, in a deployment, every member."""
        self.started = time.monotonic()
        common = ["--out", str(self.out), "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT_S)]
        common += self.size.options()
        if self.launcher:
            self.spawn(COORDINATOR, ["run", "--engine", "processes", "--quiet", *common])
            return
        listen = ["--listen", self.address]
        self.spawn(COORDINATOR, ["coordinator", "--insecure", *listen, *common])
        for name in ROLES:
            self.start_member(name)

    def start_member(self, name: str) -> Proc:
        """Start member ``name`` of a deployment (again, for a restart)."""
        role = ROLES[name]
        args = [role, "--coordinator", self.address, "--insecure"]
        args += ["--listen", "tcp://127.0.0.1:*", "--threads", "1"]
        return self.spawn(name, [*args, "--name", name] if role != "aggregator" else args)

    @property
    def coordinator(self) -> Proc:
        """The coordinator, or the launcher that runs it."""
        return self.procs[0]

    def proc(self, name: str) -> Proc | None:
        """The (first) process named ``name``."""
        return next((p for p in self.procs if p.name == name), None)

    def adopt_children(self) -> None:
        """Note the launcher's member processes as they appear."""
        if not self.launcher:
            return
        known = {p.pid for p in self.procs}
        for pid in _children(self.coordinator.pid):
            name, stat = _member_name(pid), _stat(pid)
            if pid not in known and name and stat:
                err = self.coordinator.err  # the launcher's members inherit its stderr
                self.procs.append(Proc(name, pid, None, err, start_ticks=stat[1]))

    def poll(self) -> None:
        """Note the moment each process is first seen gone."""
        self.adopt_children()
        now = time.monotonic()
        for p in self.procs:
            if p.exited_at is None and not p.alive():
                p.exited_at = now
        for watcher in self.watchers:
            watcher()

    def wait(self, done: Callable[[], bool], deadline: float) -> bool:
        """Poll until ``done()`` or ``deadline``; whether ``done()`` came true."""
        while True:
            self.poll()
            if done():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)

    def checkpoint(self) -> int:
        """The highest round checkpointed in the run directory, 0 before any."""
        try:
            names = [p.name for p in (self.out / "checkpoints").iterdir()]
        except OSError:
            return 0
        rounds = [int(n.removeprefix("round-")) for n in names if n.startswith("round-")]
        return max(rounds, default=0)

    def summary(self) -> dict[str, Any] | None:
        """DIR/summary.json, if the run wrote one."""
        try:
            return json.loads((self.out / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def kill_all(self) -> None:
        """SIGKILL every process group we started (frozen ones die too) and reap our children."""
        for p in self.procs:
            if p.popen is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs:
            if p.popen is not None:
                p.popen.wait()
            elif p.alive():  # a launcher's member that left its group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)


# ---- watching for the reaction -----------------------------------------------------------------


class LogTail:
    """The lines a file gains from a given moment on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.partial = b""

    def lines(self) -> list[str]:
        """Complete lines written since the last call."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        *whole, self.partial = (self.partial + data).split(b"\n")
        return [line.decode(errors="replace").strip() for line in whole]


class Reaction:
    """The first sign that the deployment noticed a fault."""

    def __init__(self, dep: Deployment, scenario: Scenario, target: Proc) -> None:
        self.at: float | None = None
        self.by: str | None = None
        self.word = scenario.target or ""
        if scenario.target == COORDINATOR and scenario.signum is not signal.SIGTERM:
            self.observers = [p for p in dep.procs if p is not target]  # it cannot react itself
        else:
            self.observers = [dep.coordinator]
        tails = {p.err: LogTail(p.err) for p in self.observers}
        self.tails = [(p, tails[p.err]) for p in self.observers]

    def check(self) -> bool:
        """Note the reaction if one has come now; whether one has come by now."""
        if self.at is not None:
            return True
        now = time.monotonic()
        for p, tail in self.tails:
            if p.exited_at is not None:
                self.at, self.by = p.exited_at, f"{p.name} exited"
                return True
            for line in tail.lines():
                if self.word in line:
                    self.at, self.by = now, f"{p.name} log: {line[:160]}"
                    return True
        return False


# ---- one scenario ------------------------------------------------------------------------------


def _inject(dep: Deployment, scenario: Scenario) -> Proc:
    """Send the scenario's signal to its target process (the process alone, not its group)."""
    target = dep.coordinator if scenario.target == COORDINATOR else dep.proc(scenario.target or "")
    if target is None:
        raise RuntimeError(f"no process {scenario.target} to fault")
    assert scenario.signum is not None
    os.kill(target.pid, scenario.signum)
    return target


def run_scenario(scenario: Scenario, size: Size, deadline_s: float, keep: bool) -> Result:
    """Launch, wait for round 2, inject the fault, watch the reaction, clean up, measure."""
    sig = scenario.signum.name if scenario.signum else None
    result = Result(scenario.name, scenario.target, sig)
    slug = scenario.name.replace(":", "").replace(" ", "-")
    root = Path(tempfile.mkdtemp(prefix=f"mpsl-faults-{slug}-"))
    dep = Deployment(root, size, scenario.launcher)
    start = time.monotonic()
    hard = start + deadline_s
    try:
        dep.start()
        _drive(dep, scenario, result, hard)
        left = sorted(p.name for p in dep.tmp.iterdir())
        result.leftover_files = [n for n in left if n.startswith("mpsl-keys-")]
        result.other_tmp_entries = [n for n in left if not n.startswith("mpsl-keys-")]
    except Exception as exc:  # one broken scenario should not lose the others' figures
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        dep.kill_all()
        result.wall_s = round(time.monotonic() - start, 2)
        result.coordinator_tail = _tail(dep.coordinator.err, 4)
        result.coordinator_warnings = _warnings(dep.coordinator.err, 10)
        if keep:
            print(f"  kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return result


def _drive(dep: Deployment, scenario: Scenario, result: Result, hard: float) -> None:
    """The scenario from the launch until every process exited or the cleanup deadline."""
    coordinator = dep.coordinator
    fault_at: float | None = None
    target: Proc | None = None
    reaction: Reaction | None = None
    if scenario.signum is not None:
        round_done = lambda: dep.checkpoint() >= FAULT_AFTER_ROUND  # noqa: E731
        if dep.wait(lambda: round_done() or not coordinator.alive(), hard) and coordinator.alive():
            result.fault_after_round = dep.checkpoint()
            target = _inject(dep, scenario)
            fault_at = time.monotonic()
            result.fault_injected = True
            reaction = Reaction(dep, scenario, target)
            dep.watchers.append(reaction.check)
            if scenario.restart:
                dep.wait(lambda: False, fault_at + RESTART_AFTER_S)
                dep.start_member(target.name)
    # The run is over when the coordinator exits, or at once when the fault took it away.
    coordinator_gone = fault_at is not None and target is coordinator
    coordinator_gone = coordinator_gone and scenario.signum is not signal.SIGTERM
    result.timed_out = not dep.wait(lambda: coordinator_gone or not coordinator.alive(), hard)
    ended = fault_at if coordinator_gone else coordinator.exited_at
    frozen = target if scenario.signum is signal.SIGSTOP else None
    others = [p for p in dep.procs if p is not frozen]
    cleanup = min((ended or hard) + CLEANUP_GRACE_S, hard)
    dep.wait(lambda: not any(p.alive() for p in others), cleanup)
    _measure(dep, result, fault_at, reaction, others)
    since_launch = lambda t: None if t is None else round(t - dep.started, 2)  # noqa: E731
    result.fault_at_s, result.run_s = since_launch(fault_at), since_launch(coordinator.exited_at)


def _measure(
    dep: Deployment,
    result: Result,
    fault_at: float | None,
    reaction: Reaction | None,
    others: list[Proc],
) -> None:
    """Fill in the figures from the processes and the run directory."""
    since = lambda t: None if t is None or fault_at is None else round(t - fault_at, 2)  # noqa: E731
    if reaction is not None:
        result.detected_s, result.detected_by = since(reaction.at), reaction.by
    result.exit_codes = {p.name: p.code() for p in dep.procs}
    result.exit_after_s = {p.name: since(p.exited_at) for p in dep.procs}
    result.leftover_processes = [f"{p.name} ({p.pid})" for p in others if p.alive()]
    if not result.leftover_processes:
        result.settled_s = since(max((p.exited_at or 0.0) for p in others))
    last = dep.checkpoint()
    summary = dep.summary()
    rounds = summary.get("rounds", []) if summary else []
    result.rounds_completed = len(rounds) if summary else last
    if result.fault_after_round is not None:
        result.rounds_lost = max(0, result.fault_after_round - last)
    result.samples_per_round = [r.get("samples") for r in rounds]
    if rounds:
        result.final_accuracy = rounds[-1].get("accuracy")
        if any("dropped" in r for r in rounds):
            result.dropped = [r.get("dropped") for r in rounds]
        if any("absent" in r for r in rounds):
            result.absent = [r.get("absent") for r in rounds]


def _tail(path: Path, n: int) -> list[str]:
    """The last ``n`` non-empty lines of a file."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line.strip() for line in lines if line.strip()][-n:]


def _warnings(path: Path, n: int) -> list[str]:
    """The last ``n`` warnings and errors in a log file."""
    marks = ("ERROR", "WARNING", "error:")
    return [line for line in _tail(path, 10_000) if any(m in line for m in marks)][-n:]


# ---- the table ---------------------------------------------------------------------------------


def _code(code: int | str | None) -> str:
    """A return code in few letters: 0, 1, KILL (killed by SIGKILL), alive."""
    if isinstance(code, int) and code < 0:
        try:
            return signal.Signals(-code).name.removeprefix("SIG")
        except ValueError:
            return f"sig{-code}"
    return str(code)


def _codes(r: Result) -> str:
    """The coordinator's code, then every other process whose code differs from the most common."""
    codes = {name: _code(c) for name, c in r.exit_codes.items()}
    coordinator = codes.pop(COORDINATOR, "?")
    values = list(codes.values())
    common = max(set(values), key=values.count) if values else ""
    odd = " ".join(f"{n}={c}" for n, c in codes.items() if c != common)
    return f"coord={coordinator} rest={common}" + (f" {odd}" if odd else "")


def _accuracy(r: Result) -> str:
    if r.final_accuracy is None:
        return "-"
    delta = "" if r.accuracy_vs_baseline is None else f" ({r.accuracy_vs_baseline:+.3f})"
    return f"{r.final_accuracy:.3f}{delta}"


def _by_owner(per_round: list[Any] | None) -> str:
    """Per-round lists of data owners as "owner2:r4,r5"; "-" where the summary has none."""
    if per_round is None:
        return "-"
    rounds: dict[str, list[str]] = {}
    for i, owners in enumerate(per_round, 1):
        for owner in owners or []:
            rounds.setdefault(str(owner), []).append(f"r{i}")
    return " ".join(f"{o}:{','.join(rs)}" for o, rs in rounds.items()) or "none"


def _leftovers(r: Result) -> str:
    parts = [p.split(" ")[0] for p in r.leftover_processes] + r.leftover_files
    return ", ".join(parts) or "none"


def _detected(r: Result) -> str:
    if not r.fault_injected:
        return "-" if r.signal is None else "no fault"
    if r.detected_s is None:
        return "never"
    kind = "exit" if r.detected_by and r.detected_by.endswith("exited") else "log"
    return f"{r.detected_s:.2f} ({kind})"


def table(results: list[Result]) -> str:
    """The figures as a text table, with what the coordinator said last below it."""
    head = (
        "scenario",
        "detected s",
        "rounds",
        "lost",
        "accuracy (vs base)",
        "dropped",
        "absent",
        "exit codes",
        "leftovers",
    )
    rows = [
        (
            r.scenario + (" [timed out]" if r.timed_out else ""),
            _detected(r),
            str(r.rounds_completed),
            "-" if r.rounds_lost is None else str(r.rounds_lost),
            _accuracy(r),
            _by_owner(r.dropped),
            _by_owner(r.absent),
            _codes(r),
            _leftovers(r),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    lines = [fmt(head), "-" * len(fmt(head)), *map(fmt, rows), ""]
    for r in results:
        said = (r.coordinator_warnings or r.coordinator_tail or [""])[-1]
        lines.append(
            f"{r.scenario}: detected by {r.detected_by or '-'}; the coordinator said: " + said[:200]
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--json", metavar="PATH", help="JSON file (default benchmarks/results/faults.json)"
    )
    parser.add_argument("--quick", action="store_true", help="half the rounds")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds a scenario may take")
    parser.add_argument(
        "--keep", action="store_true", help="keep each scenario's logs and run directory"
    )
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    args = parser.parse_args()
    size = Size(rounds=5 if args.quick else 10)
    chosen = [
        s for s in scenarios() if not args.only or args.only in s.name or s.name == "baseline"
    ]
    results: list[Result] = []
    for scenario in chosen:
        print(f"{scenario.name} ...", file=sys.stderr, flush=True)
        results.append(run_scenario(scenario, size, args.deadline, args.keep))
    base = next((r.final_accuracy for r in results if r.scenario == "baseline"), None)
    for r in results:
        if r.final_accuracy is not None and base is not None:
            r.accuracy_vs_baseline = round(r.final_accuracy - base, 4)
    print(table(results))
    data = {
        "machine": machine(),
        "config": {
            **asdict(size),
            "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S,
            "fault_after_round": FAULT_AFTER_ROUND,
            "cleanup_grace_s": CLEANUP_GRACE_S,
            "deadline_s": args.deadline,
            "run_options": size.options(),
        },
        "scenarios": [asdict(r) for r in results],
    }
    print(f"wrote {write('faults', data, args.json)}")


if __name__ == "__main__":
    main()
