"""Clean shutdown: a dead member, a signal or an abort ends a deployment at once, leaving nothing.

Every process started here listens on 127.0.0.1 only, is bounded by a timeout and is reaped (a
test that fails kills what it started). Time bounds are generous (20 s): the point is that a run
does not wait for the heartbeat timeout (30 s) or the registration wait (600 s).
"""

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from deploy_helpers import alive, children, cli, members_of, option_of, small_config, wait_for

from mpsl.deploy import role as role_module
from mpsl.deploy.control import abort, abort_reason, end_of_run
from mpsl.deploy.coordinator import DeploymentCoordinator
from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.launch import run_processes
from mpsl.deploy.role import Role, RoleOptions
from mpsl.deploy.transport import ZmqTransport
from mpsl.deploy.wire import decode, encode
from mpsl.errors import RuntimeFailure
from mpsl.runtime.messages import Kind, Message
from mpsl.signals import Interrupted, deferred, interruptible
from mpsl.tasks import COORDINATOR

BOUND_S = 20.0
# Long enough that a run is still training when the test stops it (each round takes ~0.2 s).
LONG = ("--data-owners", "3", "--compute-nodes", "2", "--batches-per-epoch", "3")
LONG += ("--batch-size", "16", "--rounds", "500")


def _no_leftovers() -> None:
    """This process has no member process left, and no child it has not reaped."""
    kids = children(os.getpid())
    assert not [c for c, (_, cmd) in kids.items() if "mpsl" in cmd]
    assert not [c for c, (state, _) in kids.items() if state == "Z"]


def _stop(procs: list[subprocess.Popen[bytes]], pids: dict[str, int]) -> None:
    """After a failed test: kill what it started."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for name, pid in pids.items():
        if alive(pid, name):
            os.kill(pid, signal.SIGKILL)


def test_a_compute_node_process_that_dies_fails_the_run_at_once():
    """SIGKILL to a compute node: the run fails naming it, long before the heartbeat timeout."""
    seen: dict[str, object] = {}

    def on_round(result):
        if "killed_at" in seen:
            return
        members = members_of(os.getpid())
        assert len(members) == 6
        seen["keys"] = option_of(members["node1"], "--keys")
        seen["killed_at"] = time.monotonic()
        os.kill(members["node1"], signal.SIGKILL)

    with pytest.raises(RuntimeFailure) as failure:
        run_processes(DeploymentCoordinator(small_config(rounds=500)), on_round=on_round)
    assert time.monotonic() - seen["killed_at"] < BOUND_S
    assert re.search(
        r"compute-node node1 \(process \d+\) was killed by SIGKILL before the run ended",
        str(failure.value),
    )
    _no_leftovers()
    assert not Path(str(seen["keys"])).exists()


def test_sigterm_to_the_launcher_stops_every_member_and_removes_the_keys(tmp_path):
    err = tmp_path / "stderr"
    cmd = cli("run", "--engine", "processes", *LONG, "--out", str(tmp_path / "out"))
    with err.open("wb") as stderr:
        launcher = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
    members: dict[str, int] = {}
    try:
        wait_for(lambda: "round 1:" in err.read_text(), 120, "the first round")
        members = members_of(launcher.pid)
        assert len(members) == 6
        keys = Path(option_of(members["owner1"], "--keys"))
        assert keys.name.startswith("mpsl-keys-") and keys.is_dir()
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=BOUND_S)
    finally:
        _stop([launcher], members)
    text = err.read_text()
    assert code == 128 + signal.SIGTERM, text
    assert "error: the run was interrupted by SIGTERM; every member process was stopped" in text
    assert not [name for name, pid in members.items() if alive(pid, name)]
    assert not keys.exists()


def _coordinator_address(stderr: Path) -> str:
    found = re.search(r"MP-SL coordinator at (tcp://127\.0\.0\.1:\d+)", stderr.read_text())
    return found.group(1) if found else ""


def test_sigterm_to_the_coordinator_stops_its_members(tmp_path):
    """The coordinator tells the registered members; they exit non-zero, saying so."""
    keys = tmp_path / "keys"
    create_keys(keys, ["coordinator", "node1", "node2", "aggregator", "owner1", "owner2", "owner3"])
    env = os.environ | {"COLUMNS": "200"}  # no wrapped lines to parse
    logs = {name: tmp_path / name for name in ("coordinator", "owner1")}
    procs: list[subprocess.Popen[bytes]] = []
    common = ("--keys", str(keys), "--listen", "tcp://127.0.0.1:*")
    try:
        with logs["coordinator"].open("wb") as stderr:
            cmd = cli("coordinator", *common, *LONG, "--out", str(tmp_path / "out"))
            procs.append(subprocess.Popen(cmd, stderr=stderr, env=env))
        wait_for(lambda: _coordinator_address(logs["coordinator"]), 60, "the coordinator")
        address = _coordinator_address(logs["coordinator"])
        with logs["owner1"].open("wb") as stderr:
            cmd = cli("data-owner", "--name", "owner1", "--coordinator", address, *common)
            procs.append(subprocess.Popen(cmd, stderr=stderr, env=env))
        wait_for(lambda: "registered owner1" in logs["coordinator"].read_text(), 60, "owner1")
        procs[0].send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=BOUND_S) for p in procs]
    finally:
        _stop(procs, {})
    said = {name: log.read_text() for name, log in logs.items()}
    assert codes == [128 + signal.SIGTERM, 2], said
    assert (
        "error: the coordinator was interrupted by SIGTERM; the run did not complete"
        in (said["coordinator"])
    )
    assert (
        "error: owner1: the coordinator stopped before the run began: interrupted by SIGTERM"
        in said["owner1"]
    )


def test_members_of_an_aborted_run_fail_saying_why(deployment):
    """STOP from a coordinator that aborts mid-run: no member takes it for the end of the run."""
    dep = deployment()

    def progress(r, done):
        raise RuntimeError("the operator pulled the plug")

    for name in dep.coordinator.members:
        dep.start_member(name)
    try:
        with pytest.raises(RuntimeError, match="pulled the plug"):
            dep.coordinator.run(dep.transport, progress)
    finally:
        dep.transport.close()
    dep.join()
    assert sorted(str(e) for e in dep.errors) == sorted(
        f"{name}: the coordinator aborted the run: the operator pulled the plug"
        for name in dep.coordinator.members
    )
    assert all(isinstance(e, RuntimeFailure) for e in dep.errors)


def test_a_member_hears_that_it_is_registered_and_why_the_run_never_began(
    tmp_path, caplog, monkeypatch
):
    """Registered, waiting for the others; the coordinator gives up on them and says so."""
    monkeypatch.setattr(role_module, "NOTE_S", 0.3)
    keys = tmp_path / "keys"
    coordinator = DeploymentCoordinator(small_config(), wait_s=3)
    create_keys(keys, ["coordinator", *coordinator.members])
    transport = ZmqTransport("coordinator", credentials=load_credentials(keys, "coordinator"))
    failures: list[BaseException] = []

    def run_coordinator():
        try:
            coordinator.run(transport)
        except RuntimeFailure as exc:
            failures.append(exc)

    thread = threading.Thread(target=run_coordinator, daemon=True)
    thread.start()
    member = Role(RoleOptions("owner1", transport.address, keys=keys, wait_s=BOUND_S))
    try:
        with (
            caplog.at_level(logging.INFO, logger="mpsl.deploy.role"),
            pytest.raises(RuntimeFailure) as failure,
        ):
            member.run()
    finally:
        thread.join(BOUND_S)
        transport.close()
    assert "owner1: the coordinator stopped before the run began: timed out waiting for " in str(
        failure.value
    )
    assert "not heard from: node1, node2, aggregator, owner2, owner3" in str(failure.value)
    assert len(failures) == 1
    assert f"registered at {transport.address}; waiting for the other members" in caplog.text


class Leaves(Role):
    """A member that leaves once registered (stopped by its operator before the run began)."""

    def _await_coordinator(self):
        wait_for(lambda: COORDINATOR in self.transport.last_seen, BOUND_S, "the registration")
        raise RuntimeError("stopped by its operator")


def test_a_member_that_leaves_before_the_run_begins_can_come_back(deployment, caplog):
    dep = deployment()
    result: list[object] = []
    members = dep.coordinator.members
    thread = threading.Thread(target=lambda: result.append(dep.run(skip=tuple(members))))
    with caplog.at_level(logging.WARNING, logger="mpsl.deploy.coordinator"):
        thread.start()
        dep.start_member("owner1", Leaves)
        wait_for(lambda: dep.errors, BOUND_S, "owner1 to leave")
        wait_for(lambda: "owner1 stopped" in caplog.text, BOUND_S, "the coordinator to notice")
        for name in members:
            dep.start_member(name)  # owner1 again, at another port
        thread.join(60)
    dep.join()
    assert result and len(result[0].rounds) == 1
    assert "member owner1 stopped: stopped by its operator; waiting for it" in caplog.text


@pytest.fixture
def keyring(tmp_path):
    """Keys of two `mpsl keys` runs: ours, and another deployment's."""
    for run in ("ours", "theirs"):
        create_keys(tmp_path / run, ["coordinator", "owner1"])
    return tmp_path


def _member_keys(keyring: Path, own: str, coordinator: str) -> Path:
    """owner1's key pair from run ``own``, and the coordinator's public key from ``coordinator``."""
    keys = keyring / f"owner1-{own}-{coordinator}"
    (keys / "public").mkdir(parents=True)
    shutil.copy(keyring / own / "owner1.key_secret", keys)
    shutil.copy(keyring / own / "public" / "owner1.key", keys / "public")
    shutil.copy(keyring / coordinator / "public" / "coordinator.key", keys / "public")
    return keys


@pytest.mark.parametrize(
    ("own", "coordinator", "secure", "said"),
    [
        ("theirs", "ours", True, "the coordinator at .* refused our CURVE key"),
        ("ours", "theirs", True, r"coordinator\.key is not the public key of the coordinator"),
        # Mostly the handshake says "protocol"; on a loaded machine it may end without detail.
        ("ours", "ours", False, "does not speak our security mechanism|runs with --insecure"),
    ],
    ids=["unknown member key", "wrong coordinator key", "insecure coordinator"],
)
def test_a_member_with_the_wrong_keys_gives_up_at_once_naming_them(
    keyring, own, coordinator, secure, said
):
    creds = load_credentials(keyring / "ours", "coordinator") if secure else None
    listener = ZmqTransport("coordinator", credentials=creds)
    keys = _member_keys(keyring, own, coordinator)
    member = Role(RoleOptions("owner1", listener.address, keys=keys, wait_s=BOUND_S))
    try:
        with pytest.raises(RuntimeFailure, match=said) as failure:
            member.run()
    finally:
        listener.close()
    assert "gave up" not in str(failure.value)  # at once, not after --wait


def test_the_member_command_names_a_refused_key_and_exits_2(keyring):
    listener = ZmqTransport(
        "coordinator", credentials=load_credentials(keyring / "ours", "coordinator")
    )
    keys = _member_keys(keyring, "theirs", "ours")
    cmd = cli("data-owner", "--name", "owner1", "--coordinator", listener.address)
    cmd += ["--keys", str(keys), "--listen", "tcp://127.0.0.1:*", "--wait", "20"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    finally:
        listener.close()
    assert done.returncode == 2, done.stderr
    assert "error: owner1: the coordinator at" in done.stderr
    assert "refused our CURVE key (handshake failed: authentication)" in done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_member_says_what_it_waits_for_and_gives_up_after_wait(keyring, monkeypatch, caplog):
    monkeypatch.setattr(role_module, "NOTE_S", 0.3)
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    member = Role(RoleOptions("owner1", address, keys=keyring / "ours", wait_s=1.5))
    with (
        caplog.at_level(logging.INFO, logger="mpsl.deploy.role"),
        pytest.raises(RuntimeFailure) as failure,
    ):
        member.run()
    assert str(failure.value) == (
        f"owner1: gave up after 1.5 s (--wait) waiting for the coordinator: nothing answers at "
        f"{address} (connection refused): is the coordinator running, at this address?"
    )
    assert "owner1: waiting for the coordinator" in caplog.text
    assert "nothing answers at" in caplog.text


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers live in the main thread",
)
def test_signals_raise_once_and_wait_out_deferred_blocks():
    before = signal.getsignal(signal.SIGTERM)
    finished = False
    with pytest.raises(Interrupted) as info, interruptible():
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs now, and only notes the signal
            finished = True
        pytest.fail("the signal should be raised when the deferred block ends")
    assert finished and info.value.signum == signal.SIGTERM
    assert str(info.value) == "interrupted by SIGTERM"
    with pytest.raises(Interrupted), interruptible():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # while stopping: ignored
            time.sleep(0.1)
    assert signal.getsignal(signal.SIGTERM) is before
    # On its own (whoever handles signals outside), a deferred block holds them too.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    ran_to_its_end = False
    try:
        with pytest.raises(Interrupted), deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
            ran_to_its_end = True
        assert ran_to_its_end
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stop_says_whether_the_run_completed():
    def wired(msg):
        return decode(encode(msg))

    assert abort_reason(wired(end_of_run("coordinator"))) is None
    assert abort_reason(wired(abort("coordinator", "node2 vanished"))) == "node2 vanished"
    long = abort_reason(wired(abort("coordinator", "x" * 10_000)))  # fits the wire's limit
    assert long is not None and long.endswith("...") and len(long) <= 4096
    assert abort_reason(Message(Kind.STOP, "coordinator")) == "no reason given"
