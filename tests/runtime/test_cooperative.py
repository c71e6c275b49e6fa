"""Cooperative scheduling: roles as greenlets that hand the thread over only when they wait."""

from __future__ import annotations

import threading

import pytest

from mpsl.data.synthetic import load_synthetic
from mpsl.errors import ConfigError, RuntimeFailure, TransportTimeout
from mpsl.runtime.config import RunConfig
from mpsl.runtime.cooperative import CooperativeTransport, GreenletScheduler
from mpsl.runtime.device import Device
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.messages import Kind, Message

DATA = load_synthetic((1, 8, 8), 10, train_size=48, test_size=8, seed=0)


def test_roles_take_turns_only_when_they_wait():
    scheduler = GreenletScheduler()
    transport = CooperativeTransport(scheduler)
    seen: list[str] = []

    def echo(name: str, peer: str, rounds: int):
        def serve() -> None:
            for i in range(rounds):
                msg = transport.recv(name)
                seen.append(f"{name}<{msg.batch}")
                transport.send(peer, Message(Kind.ACTIVATION, name, batch=i))
                seen.append(f"{name}>{i}")

        return serve

    scheduler.spawn(echo("a", "b", 2))
    scheduler.spawn(echo("b", "home", 2))
    transport.send("a", Message(Kind.ACTIVATION, "home", batch=7))
    assert seen == []  # spawned roles wait for the caller to wait
    assert transport.recv("home").batch == 0
    # a ran until it waited again, then b; no role was cut off between its receive and its send
    assert seen == ["a<7", "a>0", "b<0", "b>0"]
    transport.send("a", Message(Kind.ACTIVATION, "home", batch=8))
    assert transport.recv("home").batch == 1
    assert set(transport.bytes_sent) == {("home", "a"), ("a", "b"), ("b", "home")}
    assert len(seen) == 8
    assert scheduler.finish() == []  # both roles ended


def test_a_wait_no_role_can_answer_ends_at_once():
    scheduler = GreenletScheduler()
    transport = CooperativeTransport(scheduler)
    scheduler.spawn(lambda: transport.recv("idle"))
    with pytest.raises(TransportTimeout):  # no role can ever send: no point waiting out the timeout
        transport.recv("home", timeout=600)
    assert scheduler.finish() == ["idle"]
    with pytest.raises(TransportTimeout):
        transport.recv("home", timeout=0)


class _Broken(Device):
    def run(self, kind, fn, task=None):
        raise RuntimeError("the part blew up")


@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
def test_a_failing_role_is_reported_and_every_role_ends(scheduling):
    cfg = RunConfig(dataset="synthetic", rounds=1, data_owners=2, batch_size=8, cuts=[1, 3, 5])
    before = set(threading.enumerate())  # other tests' threads may share these names
    engine = InProcessEngine(cfg, dataset=DATA, devices={"node2": _Broken()}, scheduling=scheduling)
    with pytest.raises(RuntimeFailure, match=r"compute node node2.*the part blew up"):
        engine.run()
    # A data owner stopped mid-round ends instead of waiting for a message that never comes.
    roles = {"owner1", "owner2", "node1", "node2", "aggregator"}
    if engine.scheduler is not None:
        assert engine.scheduler.finish() == []
    else:
        mine = set(threading.enumerate()) - before
        assert not [t.name for t in mine if t.name in roles and t.is_alive()]


def test_emulation_needs_threads():
    cfg = RunConfig(dataset="synthetic", rounds=1, data_owners=2, batch_size=8)
    slow = {"node1": Device({"fwd": 1.0, "bwd": 1.0})}
    assert InProcessEngine(cfg, dataset=DATA, devices=slow).scheduling == "threads"
    assert InProcessEngine(cfg, dataset=DATA).scheduling == "cooperative"
    with pytest.raises(ConfigError, match="emulated") as err:
        InProcessEngine(cfg, dataset=DATA, devices=slow, scheduling="cooperative")
    assert err.value.field == "scheduling"
    with pytest.raises(ConfigError, match="one of cooperative, threads"):
        InProcessEngine(cfg, dataset=DATA, scheduling="fibers")
