"""Data owners that leave a deployment are dropped; one that comes back rejoins."""

from __future__ import annotations

import math
import os
import signal

import pytest
from deploy_helpers import members_of, small_config

from mpsl.deploy.coordinator import DeploymentCoordinator
from mpsl.deploy.launch import run_processes
from mpsl.errors import RuntimeFailure
from mpsl.runtime.data_owner import DataOwner


def test_a_killed_data_owner_process_is_dropped_and_the_run_goes_on():
    """SIGKILL to a data owner after round 1: the other two finish the run."""
    killed: list[int] = []

    def on_round(result):
        if not killed:
            pid = members_of(os.getpid())["owner2"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = run_processes(DeploymentCoordinator(small_config(rounds=3)), on_round=on_round)
    first, second, third = result.rounds
    assert first.dropped == first.absent == ()
    assert "owner2" in second.dropped + second.absent  # gone mid-round, or before it began
    assert third.absent == ("owner2",) and third.dropped == ()
    assert third.samples == 2 * 3 * 16  # the two data owners left, 3 batches of 16
    assert math.isfinite(third.accuracy)
    assert {e.node for e in result.events.records} >= {"owner1", "owner3", "node1"}


def test_a_run_left_below_min_data_owners_fails_naming_the_lost(monkeypatch):
    def on_round(result):
        os.kill(members_of(os.getpid())["owner3"], signal.SIGKILL)

    with pytest.raises(RuntimeFailure) as failure:
        run_processes(
            DeploymentCoordinator(small_config(rounds=3, min_data_owners=3)), on_round=on_round
        )
    text = str(failure.value)
    assert "only 2 of 3 data owners are left, fewer than min_data_owners (3)" in text
    assert "owner3: data-owner owner3 (process" in text and "killed by SIGKILL" in text


def test_a_data_owner_that_comes_back_rejoins_at_a_later_round(deployment, monkeypatch):
    """owner2 is interrupted in round 2 (dropped), starts again, and trains in a later round."""
    dep = deployment(small_config(rounds=200), timeout_s=10.0)
    original = DataOwner._round

    def once_interrupted(self, start):
        if self.name == "owner2" and start.round == 1 and not restarted:
            raise KeyboardInterrupt  # in the serve thread: the member leaves, telling why
        return original(self, start)

    monkeypatch.setattr(DataOwner, "_round", once_interrupted)
    restarted: list[bool] = []
    rounds = []

    class Enough(Exception):
        pass

    def on_round(result):
        rounds.append(result)
        if "owner2" in result.dropped and not restarted:
            restarted.append(True)
            dep.start_member("owner2")  # a fresh process of the same member, at a new address
        if restarted and len(rounds) > 2 and not (rounds[-1].absent or rounds[-1].dropped):
            raise Enough  # owner2 trained again

    for name in dep.coordinator.members:
        dep.start_member(name)
    try:
        with pytest.raises(Enough):
            dep.coordinator.run(dep.transport, on_round=on_round)
    finally:
        dep.transport.close()
    assert rounds[1].dropped == ("owner2",)
    assert rounds[-1].absent == rounds[-1].dropped == () and rounds[-1].samples == 3 * 3 * 16
    left = [e for e in dep.errors if isinstance(e, KeyboardInterrupt)]
    assert len(left) == 1  # the first owner2, interrupted
    dep.join()


def test_a_member_lost_after_the_last_round_does_not_fail_the_finished_run(caplog):
    """The rounds are done: a member that leaves before its final metrics costs only those."""
    import queue

    from mpsl.deploy.control import Control, ControlKind, Metrics
    from mpsl.runtime.events import EventLog
    from mpsl.runtime.messages import Kind, Message

    deployment = DeploymentCoordinator(small_config(data_owners=1, compute_nodes=1))
    inbox: queue.Queue = queue.Queue()

    class Inbox:
        def recv_packet(self, timeout=None):
            return inbox.get(timeout=5)

    deployment.transport = Inbox()  # type: ignore[assignment]
    inbox.put(Control(ControlKind.METRICS, "node1", Metrics(peak_memory_bytes=7)))
    inbox.put(Message(Kind.LEFT, "owner1", text="data-owner owner1 was killed"))
    inbox.put(Message(Kind.ERROR, "aggregator", text="aggregator failed while reporting"))
    _, memory = deployment._collect(EventLog(), ["node1", "owner1", "aggregator"])
    assert memory == {"node1": 7}
    assert "no final metrics from owner1" in caplog.text
    assert "no final metrics from aggregator" in caplog.text
