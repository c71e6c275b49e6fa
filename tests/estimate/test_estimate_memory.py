"""The memory model against what the runtime counts, and the per-task overhead term."""

from __future__ import annotations

import pytest
import torch

from mpsl.cluster import Cluster
from mpsl.data.synthetic import load_synthetic
from mpsl.emulate.calibrate import measure_task_overhead, with_task_overhead
from mpsl.estimate.closed_form import multihop
from mpsl.estimate.costs import pipeline_costs
from mpsl.estimate.memory import (
    node_memory_bytes,
    owner_memory_bytes,
    part_activation_bytes,
    part_grad_bytes,
    part_state_bytes,
)
from mpsl.estimate.simulate import simulate
from mpsl.estimate.summary import estimate
from mpsl.models import build_model
from mpsl.profile.format import LayerProfile, Profile, Timing
from mpsl.profile.measure import MeasureSettings, measure_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine

FAST = MeasureSettings(repeats=1, warmup=0)


def cluster(owners: int = 1, nodes: int = 2, batch: int = 8) -> Cluster:
    return Cluster.model_validate(
        {
            "data_owners": [
                {"count": owners, "device": "box", "memory_bytes": 1e9, "link_bps": 1e9}
            ],
            "compute_nodes": [
                {"name": f"n{i}", "device": "box", "memory_bytes": 1e9} for i in range(nodes)
            ],
            "links": {"compute_to_compute_bps": 1e9},
            "training": {"batch_size": batch, "batches_per_epoch": 3, "local_epochs": 1},
        }
    )


@pytest.mark.parametrize(
    ("model", "shape", "cuts"),
    [("lenet5", (1, 28, 28), [1, 3, 5]), ("resnet18", (3, 16, 16), [2, 4, 11])],
)
def test_node_estimate_is_what_the_runtime_counts(
    model: str, shape: tuple[int, ...], cuts: list[int]
) -> None:
    # One data owner: one batch in flight, so the count does not depend on timing.
    profile = measure_model(model, 8, input_shape=shape, num_classes=10, settings=FAST)
    data = load_synthetic(shape, 10, train_size=24, test_size=8)
    cfg = RunConfig(
        model=model,
        dataset="synthetic",
        input_shape=list(shape),
        data_owners=1,
        cuts=cuts,
        rounds=1,
        local_epochs=1,
        batches_per_epoch=3,
        batch_size=8,
    )
    result = InProcessEngine(
        cfg, dataset=data, model=build_model(model, 10, shape, seed=0), evaluate=False
    ).run()
    bounds = list(zip([c + 1 for c in cuts[:-1]], cuts[1:], strict=True))
    for i, (first, last) in enumerate(bounds):
        assert result.peak_memory_bytes[f"node{i + 1}"] == node_memory_bytes(
            profile, first, last, owners=1
        )


def test_measured_saved_bytes_count_a_tensor_kept_on_both_sides_of_a_cut_once() -> None:
    p = measure_model("resnet18", 4, input_shape=(3, 16, 16), settings=FAST)
    chain = build_model("resnet18", 10, (3, 16, 16), seed=0)
    x = torch.randn(4, 3, 16, 16)
    counted: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        counted[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    params = {q.untyped_storage().data_ptr() for q in chain.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        chain(x)
    whole = sum(n for ptr, n in counted.items() if ptr not in params)
    assert part_activation_bytes(p, 1, p.num_layers) == whole
    assert whole < sum(lp.saved_bytes or 0 for lp in p.layers)  # shared tensors were deduped


def layer(name: str, out: int, params: int, **extra: object) -> LayerProfile:
    return LayerProfile(
        name=name, output_bytes=out, param_bytes=params, ms={"box": Timing(fwd=1, bwd=2)}, **extra
    )


def test_state_is_per_instance_gradients_are_for_one_and_old_profiles_fall_back() -> None:
    old = Profile(
        model="m",
        batch_size=4,
        input_bytes=50,
        layers=[layer("a", 100, 10), layer("b", 200, 20), layer("c", 300, 30)],
    )
    # no optimizer state measured: the runtime's SGD with momentum, one buffer per parameter
    assert part_state_bytes(old, 2, 3) == 2 * 50
    assert part_grad_bytes(old, 2, 3) == 50
    assert part_activation_bytes(old, 2, 3) == 100 + 200 + 300  # its input and the outputs
    assert part_activation_bytes(old, 1, 1, scale=2) == 2 * (50 + 100)
    assert node_memory_bytes(old, 2, 3, owners=5) == 5 * 100 + 50 + 5 * 600
    assert node_memory_bytes(old, 2, 3, owners=5, in_flight=2) == 5 * 100 + 50 + 2 * 600
    measured = Profile(
        model="m",
        batch_size=4,
        layers=[
            layer("a", 100, 10, saved_bytes=150, saves_input=True, saves_output=True),
            layer("b", 200, 20, saved_bytes=130, saves_input=True, buffer_bytes=8),
            layer("c", 300, 0, saved_bytes=70, saves_output=True, optimizer_bytes=0),
        ],
    )
    assert part_state_bytes(measured, 1, 3) == 10 + 10 + 20 + 8 + 20
    assert part_activation_bytes(measured, 1, 3) == 150 + 130 + 70 - 100  # a's output once
    assert part_activation_bytes(measured, 2, 3) == 130 + 70
    assert owner_memory_bytes(measured, [1, 2]) == 20 + 0 + 10 + 150 + 70


def test_simulation_counts_batches_in_flight_at_each_node() -> None:
    p = measure_model("digits_cnn", 4, device_name="box", settings=FAST)
    three = simulate(pipeline_costs(p, cluster(owners=3), [1, 3, 5]))
    assert three.nodes[0].max_in_flight == 3  # all three first batches reach node 1 at once
    assert all(1 <= n.max_in_flight <= 3 for n in three.nodes)
    one = simulate(pipeline_costs(p, cluster(), [1, 3, 5]))
    assert [n.max_in_flight for n in one.nodes] == [1, 1]
    est = estimate(p, cluster(owners=3), [1, 3, 5], method="sim").to_json()
    assert est["in_flight"] == {
        "n0": three.nodes[0].max_in_flight,
        "n1": three.nodes[1].max_in_flight,
    }


def test_task_overhead_is_added_to_every_task_of_its_device() -> None:
    p = measure_model("digits_cnn", 8, device_name="box", settings=FAST)
    c = cluster()
    base = pipeline_costs(p, c, [1, 3, 5])
    more = pipeline_costs(with_task_overhead(p, "box", 0.5), c, [1, 3, 5])
    for a, b in zip(base.nodes, more.nodes, strict=True):
        assert b.fwd_ms == pytest.approx(a.fwd_ms + 0.5) and b.bwd_ms == pytest.approx(
            a.bwd_ms + 0.5
        )
    o, q = base.owners[0], more.owners[0]
    assert (q.first_fwd_ms, q.last_ms, q.first_bwd_ms) == pytest.approx(
        (o.first_fwd_ms + 0.5, o.last_ms + 0.5, o.first_bwd_ms + 0.5)
    )
    # one data owner, three batches: seven tasks a batch, one after the other
    assert simulate(more).round_ms - simulate(base).round_ms == pytest.approx(3 * 7 * 0.5)
    assert estimate(with_task_overhead(p, "other", 9.0), c, [1, 3, 5]).round_ms == pytest.approx(
        multihop(base).round_ms
    )


def test_task_overhead_calibration_runs_the_runtime() -> None:
    o = measure_task_overhead(batches=2, pairs=3, settings=FAST)
    assert o.ms == max(0.0, sorted(o.per_pair_ms)[1]) and o.tasks_per_round == 2 * 7
    with pytest.raises(ValueError, match="at least 1 pair"):
        measure_task_overhead(pairs=0)
