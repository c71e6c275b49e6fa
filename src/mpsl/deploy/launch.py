"""``mpsl run --engine processes``: every role its own local process, encrypted, on loopback.

The same deployment as on many hosts (keys, registration, heartbeats), all on this machine: the
coordinator runs in this process, every other member is started as ``python -m mpsl <role>``.

The launcher watches its children while the run goes on: one that exits before the run ends fails
the run at once, naming it and how it ended (no waiting for the heartbeat timeout). Whatever way
the run ends (done, failed, or SIGINT/SIGTERM under ``signals.py``), every child is
stopped and reaped, and the temporary keys directory removed, before ``run_processes`` returns.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from mpsl.deploy.coordinator import DeploymentCoordinator, OnMember
from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.threads import member_threads
from mpsl.deploy.transport import ZmqTransport
from mpsl.runtime.coordinator import Progress, RoundResult
from mpsl.runtime.engine import RunResult
from mpsl.runtime.layout import RoleKind
from mpsl.signals import deferred

log = logging.getLogger(__name__)

WATCH_S = 0.2  # how often the launcher looks at its children
ABORT_GRACE_S = 3.0  # after a failed run: time for members to stop on the coordinator's STOP
TERM_GRACE_S = 5.0  # after SIGTERM: time for a member to exit before SIGKILL


def run_processes(
    coordinator: DeploymentCoordinator,
    progress: Progress | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    on_member: OnMember | None = None,
    secure: bool = True,
    threads: int | None = None,
    start_round: int = 0,
    member_args: Mapping[str, Sequence[str]] | None = None,
) -> RunResult:
    """Train ``coordinator``'s run with every member a separate process of this machine.

    ``threads``: torch threads of every member (default: ``threads.member_threads``, the run
    config's ``threads`` or the policy for members that share this machine's cores).
    ``start_round``: the first round to train (a resumed run; the coordinator's model holds the
    weights after the rounds before it). ``member_args``: more options of a member's command, by
    member name (a privacy audit's ``--observe``).
    """
    config = coordinator.config
    threads = threads or member_threads(config, len(coordinator.layout.nodes))
    log.info("every member computes with %d torch threads", threads)
    with tempfile.TemporaryDirectory(prefix="mpsl-keys-") as keys:
        credentials = None
        if secure:
            create_keys(keys, ["coordinator", *coordinator.members])
            credentials = load_credentials(keys, "coordinator")
        transport = ZmqTransport("coordinator", "tcp://127.0.0.1:*", credentials)
        children: dict[str, subprocess.Popen[bytes]] = {}
        stop_watching = threading.Event()
        watch = threading.Thread(
            target=_watch, args=(children, coordinator, stop_watching), name="children", daemon=True
        )
        completed = False
        try:
            for member in coordinator.members:
                cmd = member_command(
                    coordinator, member, transport.address, keys if secure else None, threads
                )
                cmd += (member_args or {}).get(member, [])
                with deferred():  # a child started is a child noted, whatever signal comes
                    children[member] = subprocess.Popen(cmd)
            watch.start()
            result = coordinator.run(transport, progress, on_round, on_member, start_round)
            completed = True
            return result
        finally:
            with deferred():
                stop_watching.set()
                if watch.is_alive():
                    watch.join()
                _stop(children, grace_s=coordinator.timeout_s if completed else ABORT_GRACE_S)
                transport.close(linger_s=0)  # every member is gone: nothing left to deliver


def member_command(
    coordinator: DeploymentCoordinator,
    member: str,
    address: str,
    keys: str | None,
    threads: int,
) -> list[str]:
    """The command line that starts ``member`` on this machine (``keys`` None: --insecure)."""
    role = coordinator.layout.role_of(member)
    cmd = [sys.executable, "-m", "mpsl", role.value, "--name", member]
    cmd += ["--coordinator", address, "--listen", "tcp://127.0.0.1:*"]
    cmd += ["--keys", keys] if keys else ["--insecure"]
    cmd += ["--threads", str(threads), "--wait", str(coordinator.wait_s)]
    data_path = coordinator.config.data_path
    if data_path and role is RoleKind.DATA_OWNER:
        cmd += ["--data-path", data_path]
    return cmd


def _watch(
    children: dict[str, subprocess.Popen[bytes]],
    coordinator: DeploymentCoordinator,
    stop: threading.Event,
) -> None:
    """Until ``stop``: a child that exits before the run ends has left it (a data owner is
    dropped; any other member ends the run, and the watch)."""
    gone: set[str] = set()
    while not stop.wait(WATCH_S):
        for member, proc in children.items():
            code = proc.poll()
            if member in gone or code is None or (code == 0 and coordinator.finished.is_set()):
                continue
            gone.add(member)
            role = coordinator.layout.role_of(member)
            text = f"{role.value} {member} (process {proc.pid}) {_how(code)} before the run ended"
            if role is RoleKind.DATA_OWNER and coordinator.started.is_set():
                coordinator.left(member, text)
                continue
            coordinator.fail(f"{text}; stopping the run")
            return


def _how(code: int) -> str:
    """How a process ended, from its return code."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _stop(children: dict[str, subprocess.Popen[bytes]], grace_s: float) -> None:
    """Let every child exit within ``grace_s``, then SIGTERM, then SIGKILL; reap them all."""
    running = _wait(children, grace_s)
    for member, proc in running.items():
        log.info("stopping %s (process %d)", member, proc.pid)
        proc.terminate()
    for member, proc in _wait(running, TERM_GRACE_S).items():
        log.warning("%s (process %d) did not exit; killing it", member, proc.pid)
        proc.kill()
        proc.wait()


def _wait(
    children: dict[str, subprocess.Popen[bytes]], seconds: float
) -> dict[str, subprocess.Popen[bytes]]:
    """The children still running after waiting up to ``seconds`` for all of them."""
    deadline = time.monotonic() + seconds
    for proc in children.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    return {m: p for m, p in children.items() if p.poll() is None}
