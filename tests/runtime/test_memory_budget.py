"""A compute node's memory budget: instances swapped to disk and back, forwards held back."""

from __future__ import annotations

import copy

import pytest
import torch

from mpsl.data.synthetic import load_synthetic
from mpsl.errors import ConfigError
from mpsl.models import build_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.instances import InstanceStore
from mpsl.runtime.setup import optimizer_factory

DATA = load_synthetic((1, 8, 8), 10, train_size=96, test_size=16, seed=3)


def _run(budget: int | None, optimizer: str = "adam") -> InProcessEngine:
    cfg = RunConfig(
        dataset="synthetic",
        input_shape=[1, 8, 8],
        data_owners=4,
        cuts=[1, 3, 5],
        rounds=2,
        batch_size=8,
        optimizer=optimizer,
        lr=0.01,
        seed=3,
        node_memory_budget=budget,
    )
    engine = InProcessEngine(cfg, dataset=DATA, model=build_model("digits_cnn", 10, (1, 8, 8)))
    engine.result = engine.run()  # type: ignore[attr-defined]
    return engine


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_budget_of_one_instance_swaps_and_trains_the_same_model(optimizer):
    free, tight = _run(None, optimizer), _run(1, optimizer)
    a = free.result.model.state_dict()  # type: ignore[attr-defined]
    b = tight.result.model.state_dict()  # type: ignore[attr-defined]
    assert all(torch.equal(a[k], b[k]) for k in a)  # same sums in the same order: bit-equal
    for node in tight.nodes:
        assert len(node.store.slots) == 1  # the floor: one instance, one batch in flight
        assert node.store.writes > 0 and node.store.swaps_in > 4
        assert node.store.backing.dir is None  # its files went with the run
    assert all(len(n.store.slots) == 4 for n in free.nodes)


def test_a_budget_between_keeps_what_fits_and_the_peak_under_it():
    probe = _run(None)
    node = probe.nodes[0]
    per_instance = node.store.instance_bytes
    budget = node.store.grad_bytes + 2 * (per_instance + node.store.batch_bytes)
    engine = _run(budget)
    tight = engine.nodes[0]
    # Two instances and two batches, or three instances and one batch: the rule decides which.
    assert 2 <= len(tight.store.slots) < 4
    assert tight.peak_memory_bytes <= budget
    assert tight.peak_memory_bytes < node.peak_memory_bytes


def test_an_instance_written_and_read_back_keeps_its_optimizer_state():
    part = torch.nn.Linear(3, 2)
    cfg = RunConfig(optimizer="adam", lr=0.01)
    store = InstanceStore(part, [0, 1], optimizer_factory(cfg), budget=1)
    store.start_round()
    slot = store.acquire(0, pinned=())
    slot.module(torch.ones(1, 3)).sum().backward()
    assert slot.optimizer is not None
    slot.optimizer.step()
    store.instances[0].samples = 1
    before = copy.deepcopy(slot.optimizer.state_dict()["state"])
    weights = {k: v.clone() for k, v in slot.module.state_dict().items()}
    store.acquire(1, pinned=())  # takes the only slot: 0 goes to its file
    assert store.instances[0].on_disk and store.instances[0].slot is None
    (on_disk,) = store.states([0])
    assert all(torch.equal(on_disk[k], weights[k]) for k in weights)
    back = store.acquire(0, pinned=())
    assert back.optimizer is not None
    after = back.optimizer.state_dict()["state"]
    assert before.keys() == after.keys()
    for i in before:
        assert all(torch.equal(before[i][k], after[i][k]) for k in before[i])
    store.close()


def test_a_budget_must_be_positive():
    with pytest.raises(ConfigError, match="node_memory_budget"):
        InstanceStore(torch.nn.Linear(2, 2), [0], optimizer_factory(RunConfig()), budget=0)
