"""Schedule files as the runtime reads them, and a schedule's orders run by the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mpsl.errors import FormatError
from mpsl.estimate.costs import NodeCosts, OwnerCosts, PipelineCosts
from mpsl.estimate.simulate import simulate
from mpsl.schedule import Schedule, generate, load_schedule, solve
from mpsl.tasks import Order


@pytest.fixture(scope="module")
def solved() -> Schedule:
    return solve(generate("resnet101", owners=6, helpers=3, seed=2), "fast", seed=2)


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_a_solved_schedule_round_trips(tmp_path: Path, solved: Schedule) -> None:
    # What `mpsl schedule --json` prints, extra fields included.
    printed = {**solved.to_json(), "requested_method": "fast", "notes": list(solved.notes)}
    assignment, orders = load_schedule(_write(tmp_path / "s.json", printed))
    assert assignment == list(solved.assignment)
    assert orders == solved.orders()
    for h, order in orders.items():
        assert order.owners == solved.owners_of(h)
        assert [(a.owner, str(a.kind)) for a in order.actions] == solved.helper_order(h)


def test_orders_leave_out_helpers_without_data_owners() -> None:
    s = solve(generate("resnet101", owners=2, helpers=3, seed=0), "fast")
    assert set(s.orders()) == set(s.assignment) and len(s.orders()) < 3


def _broken(tmp_path: Path, solved: Schedule, change: Any) -> Path:
    data = solved.to_json()
    change(data["tasks"])
    return _write(tmp_path / "broken.json", data)


def test_a_task_on_another_helper_is_refused(tmp_path: Path, solved: Schedule) -> None:
    def move(tasks: list[dict[str, Any]]) -> None:
        tasks[0]["helper"] = (tasks[0]["helper"] + 1) % 3

    path = _broken(tmp_path, solved, move)
    owner, helper = solved.tasks[0].owner, (solved.tasks[0].helper + 1) % 3
    with pytest.raises(FormatError) as err:
        load_schedule(path)
    assert str(err.value) == (
        f"{path}: task of data owner {owner} on helper {helper} contradicts the assignment"
    )


def test_a_missing_bwd_task_is_refused(tmp_path: Path, solved: Schedule) -> None:
    bwd = next(i for i, t in enumerate(solved.tasks) if t.kind == "bwd")
    path = _broken(tmp_path, solved, lambda tasks: tasks.pop(bwd))
    owner, helper = solved.tasks[bwd].owner, solved.tasks[bwd].helper
    with pytest.raises(FormatError) as err:
        load_schedule(path)
    assert str(err.value) == (
        f"{path}: helper {helper}: data owner {owner} needs one fwd task and then one bwd task "
        f"in the order; got fwd"
    )


def test_a_data_owner_without_tasks_is_refused(tmp_path: Path, solved: Schedule) -> None:
    owner = solved.tasks[0].owner
    path = _broken(tmp_path, solved, lambda tasks: tasks.__setitem__(
        slice(None), [t for t in tasks if t["owner"] != owner]
    ))  # fmt: skip
    helper = solved.assignment[owner]
    with pytest.raises(FormatError) as err:
        load_schedule(path)
    assert (
        str(err.value) == f"{path}: data owner {owner} has no task on helper {helper}, its helper"
    )


def test_a_bwd_task_before_its_fwd_task_is_refused(tmp_path: Path, solved: Schedule) -> None:
    def swap_times(tasks: list[dict[str, Any]]) -> None:
        fwd = next(t for t in tasks if t["kind"] == "fwd")
        bwd = next(t for t in tasks if t["kind"] == "bwd" and t["owner"] == fwd["owner"])
        fwd["kind"], bwd["kind"] = "bwd", "fwd"

    path = _broken(tmp_path, solved, swap_times)
    with pytest.raises(FormatError, match=rf"^{path}: helper \d: data owner \d needs one fwd"):
        load_schedule(path)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"assignment": [], "tasks": []}, "field 'assignment'"),
        ({"assignment": [0], "tasks": [{"owner": 0, "helper": 0, "kind": "up"}]}, "tasks"),
    ],
)
def test_malformed_files_name_the_field(tmp_path: Path, data: dict, match: str) -> None:
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(FormatError, match=match) as err:
        load_schedule(path)
    assert str(err.value).startswith(str(path))


def test_the_simulator_runs_a_schedules_order() -> None:
    # One helper: its order is a prescribed order of a one-node pipeline of the same data owners.
    s = solve(generate("vgg19", owners=4, helpers=1, seed=1), "fast")
    (order,) = s.orders().values()
    owners = (OwnerCosts("g", 4, *[1.0] * 9),)
    c = PipelineCosts(owners, (NodeCosts("helper", 1, 2, 2.0, 3.0),), (), 2, 0.0)
    r = simulate(c, orders={0: order}, trace=True)
    ran = [(t.owner, t.batch, t.kind) for t in r.trace if t.node == "helper"]
    assert ran == [(a.owner, a.batch, a.kind) for a in map(order.at, range(16))]
    assert isinstance(order, Order) and r.nodes[0].tasks == 16
