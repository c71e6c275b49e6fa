"""Data-owner dropout: a data owner that leaves is dropped from its round and from FedAvg."""

from __future__ import annotations

import copy
import queue

import pytest
import torch

from mpsl.data import partition
from mpsl.data.synthetic import load_synthetic
from mpsl.errors import RuntimeFailure
from mpsl.models import build_model
from mpsl.runtime.aggregator import Aggregator
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import Coordinator
from mpsl.runtime.data_owner import DataOwner
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.setup import optimizer_factory
from mpsl.runtime.worker import Stopped
from mpsl.split import split_model
from mpsl.tasks import COORDINATOR, Order
from mpsl.training.plain import fedavg_round
from mpsl.training.steps import Workload
from small_setups import SMALL_DATA, small_config

DATA = SMALL_DATA


def _config(**changes) -> RunConfig:
    """Three data owners, one local epoch of three batches, SGD at the default rate."""
    values: dict[str, object] = dict(
        data_owners=3, local_epochs=1, batches_per_epoch=3, seed=11, optimizer="sgd", lr=0.05
    )
    return small_config(**(values | changes))


def _leaves_in_round_0_batch_1(monkeypatch, index: int) -> None:
    """Data owner ``index`` leaves in the middle of round 0 (after one batch went through)."""
    original = DataOwner._batch

    def batch(self, r, b, idx, opt_first, opt_last):
        if self.index == index and r == 0 and b == 1:
            self.transport.send(COORDINATOR, Message(Kind.LEFT, self.name, text="unplugged"))
            raise Stopped  # the role ends, as a killed process would
        return original(self, r, b, idx, opt_first, opt_last)

    monkeypatch.setattr(DataOwner, "_batch", batch)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize("budget", [None, 1])  # 1 byte: swapped out whenever another computes
@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
def test_a_data_owner_that_leaves_mid_round_is_left_out_of_fedavg(monkeypatch, scheduling, budget):
    """Its half-trained instances never reach the global model; it sits out the next round."""
    cfg = _config(node_memory_budget=budget)
    _leaves_in_round_0_batch_1(monkeypatch, index=2)
    start = build_model("digits_cnn", 10, (1, 8, 8), seed=5)
    reference = copy.deepcopy(start)
    result = InProcessEngine(cfg, dataset=DATA, model=start, scheduling=scheduling).run()

    shares_idx = partition(DATA.train.y.numpy(), 3, "iid", 0.5, cfg.seed)
    shares = [DATA.train.subset(torch.from_numpy(i)) for i in shares_idx]
    workload = Workload(cfg.batch_size, cfg.local_epochs, cfg.batches_per_epoch, cfg.seed)
    factory = optimizer_factory(cfg)
    reference.load_state_dict(fedavg_round(reference, shares[:2], workload, factory, 0))
    expected = fedavg_round(reference, shares[:2], workload, factory, 1)
    assert _max_diff(result.model.state_dict(), expected) < 1e-5

    first, second = result.rounds
    assert first.dropped == ("owner3",) and first.absent == ()
    assert second.dropped == () and second.absent == ("owner3",)
    assert first.samples == second.samples == 2 * 3 * 8  # two data owners, 3 batches of 8
    assert not any(e.owner == 2 and e.round == 1 for e in result.events.records)


def test_a_round_left_with_fewer_than_min_data_owners_fails_naming_them(monkeypatch):
    _leaves_in_round_0_batch_1(monkeypatch, index=1)
    with pytest.raises(RuntimeFailure) as failure:
        InProcessEngine(_config(min_data_owners=3), dataset=DATA).run()
    text = str(failure.value)
    assert "round 1: only 2 of 3 data owners are left" in text
    assert "min_data_owners (3)" in text and "owner2: unplugged" in text


def test_scheduled_helpers_skip_the_turns_of_a_dropped_data_owner(monkeypatch):
    """A prescribed order does not wait for the tasks of a data owner that left."""
    cfg = RunConfig(
        dataset="synthetic",
        data_owners=5,
        cuts=[2, 4],
        rounds=2,
        local_epochs=1,
        batches_per_epoch=3,
        batch_size=8,
        seed=2,
    )
    steps = {
        0: [(2, "fwd"), (0, "fwd"), (2, "bwd"), (0, "bwd")],
        1: [(4, "fwd"), (1, "fwd"), (3, "fwd"), (1, "bwd"), (4, "bwd"), (3, "bwd")],
    }
    orders = {helper: Order.of(s) for helper, s in steps.items()}
    _leaves_in_round_0_batch_1(monkeypatch, index=4)
    data = load_synthetic((1, 8, 8), 10, train_size=96, test_size=16, seed=1)
    result = InProcessEngine(cfg, dataset=data, assignment=[0, 1, 0, 1, 1], orders=orders).run()
    assert [r.dropped for r in result.rounds] == [("owner5",), ()]
    assert result.rounds[1].absent == ("owner5",)


class _Script:
    """A transport whose inbox the test fills, recording what the coordinator sends."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.sent: list[tuple[str, Message]] = []
        self.on_send = lambda dest, msg: None

    def send(self, dest: str, msg: Message) -> None:
        self.sent.append((dest, msg))
        self.on_send(dest, msg)

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        return self.inbox.get(timeout=5)

    def close(self) -> None:
        pass


def _scripted_round() -> tuple[_Script, Coordinator, dict, dict]:
    """A coordinator of 2 data owners and one compute node over a scripted transport, and the
    weights its node and aggregator answer with."""
    model = build_model("digits_cnn", 10, (1, 8, 8), seed=1)
    parts = split_model(model, [1, 5])  # first, one middle part, last
    script = _Script()
    coordinator = Coordinator(
        transport=script,
        parts=parts,
        model=model,
        owners=2,
        test=None,
        nodes=["node1"],
        node_parts=[1],
    )
    middle = {k: v.clone() for k, v in parts[1].state_dict().items()}
    first_last = {f"first.{k}": v.clone() for k, v in parts[0].state_dict().items()}
    first_last |= {f"last.{k}": v.clone() for k, v in parts[2].state_dict().items()}
    return script, coordinator, middle, first_last


def test_a_finisher_lost_before_the_averaging_is_in_is_averaged_out_again():
    """Its weights may never reach the aggregator: the coordinator asks again without it."""
    script, coordinator, middle, first_last = _scripted_round()
    for k in (0, 1):
        script.inbox.put(Message(Kind.ROUND_DONE, f"owner{k + 1}", k, round=0, samples=8))

    def answer(dest: str, msg: Message) -> None:
        if msg.kind is not Kind.AGGREGATE:
            return
        if msg.batch == 0 and dest == "node1":  # the first request: owner2 is lost meanwhile
            script.inbox.put(Message(Kind.WEIGHTS, "node1", round=0, batch=0, tensors=middle))
            script.inbox.put(Message(Kind.LEFT, "owner2", text="owner2 vanished"))
        if msg.batch == 1:
            tensors = middle if dest == "node1" else first_last
            script.inbox.put(Message(Kind.WEIGHTS, dest, round=0, batch=1, tensors=tensors))

    script.on_send = answer
    result = coordinator.run_round(0)
    asked = [(d, m.batch, m.owners) for d, m in script.sent if m.kind is Kind.AGGREGATE]
    assert asked == [
        ("node1", 0, (0, 1)),
        ("aggregator", 0, (0, 1)),
        ("node1", 1, (0,)),
        ("aggregator", 1, (0,)),
    ]
    assert result.dropped == ("owner2",) and result.samples == 8
    assert coordinator.lost == {1: "owner2 vanished"}


def test_the_aggregator_averages_the_data_owners_it_is_asked_for():
    script = _Script()
    aggregator = Aggregator(owners=3, transport=script, events=EventLog())
    one = {"w": torch.tensor([1.0])}
    three = {"w": torch.tensor([3.0])}
    aggregator._handle(Message(Kind.WEIGHTS, "owner1", 0, round=0, tensors=one, samples=1))
    ask = Message(Kind.AGGREGATE, COORDINATOR, round=0, owners=(0, 2))
    aggregator._handle(ask)
    assert script.sent == []  # owner3's weights are still on their way
    aggregator._handle(Message(Kind.WEIGHTS, "owner3", 2, round=0, tensors=three, samples=3))
    (dest, reply), *_ = script.sent
    assert dest == COORDINATOR and float(reply.tensors["w"]) == pytest.approx(2.5)
    again = Message(Kind.AGGREGATE, COORDINATOR, batch=1, round=0, owners=(0,))
    aggregator._handle(again)
    assert float(script.sent[-1][1].tensors["w"]) == 1.0 and script.sent[-1][1].batch == 1


def test_a_finisher_that_leaves_while_others_train_leaves_the_round():
    """Its ROUND_DONE came, then its LEFT: its weights may never reach the aggregator."""
    script, coordinator, middle, first_last = _scripted_round()
    script.inbox.put(Message(Kind.ROUND_DONE, "owner1", 0, round=0, samples=8))
    script.inbox.put(Message(Kind.LEFT, "owner1", text="owner1 vanished"))
    script.inbox.put(Message(Kind.ROUND_DONE, "owner2", 1, round=0, samples=8))

    def answer(dest: str, msg: Message) -> None:
        if msg.kind is Kind.AGGREGATE:
            tensors = middle if dest == "node1" else first_last
            script.inbox.put(Message(Kind.WEIGHTS, dest, round=0, batch=msg.batch, tensors=tensors))

    script.on_send = answer
    result = coordinator.run_round(0)
    asked = [(d, m.owners) for d, m in script.sent if m.kind is Kind.AGGREGATE]
    assert asked == [("node1", (1,)), ("aggregator", (1,))]
    assert result.dropped == ("owner1",) and result.samples == 8
