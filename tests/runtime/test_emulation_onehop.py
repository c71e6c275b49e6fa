"""A one-hop schedule in the emulated runtime: helpers follow their orders, tasks take the
scenario's times, and the measured makespan is the evaluator's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_run import run
from mpsl.cli import app
from mpsl.emulate.onehop import emulate_schedule
from mpsl.errors import ConfigError
from mpsl.schedule import Scenario, generate, solve
from mpsl.schedule.solve import Method
from mpsl.tasks import Order, TaskKind

F, B = TaskKind.FWD, TaskKind.BWD
UNIT_S = 0.05  # one scenario millisecond lasts this many real seconds


def two_owners_one_helper() -> Scenario:
    # owner 0: release 0, fwd 2, lag 3, bwd 4, tail 1; owner 1: release 1, fwd 1, lag 1, bwd 2, tail 5
    return Scenario(
        release_ms=[[0.0], [1.0]], fwd_ms=[[2.0], [1.0]], lag_ms=[[3.0], [1.0]],
        bwd_ms=[[4.0], [2.0]], tail_ms=[[1.0], [5.0]], demand_bytes=[1, 1], capacity_bytes=[2],
    )  # fmt: skip


def test_a_helper_runs_its_prescribed_order_out_of_arrival_order_on_time() -> None:
    # F1 [1,2] F0 [2,4] B1 ready 3 -> [4,6] done 11; B0 ready 7 -> [7,11] done 12. Owner 0's
    # activation comes first (at 0) but runs second: matching tasks to arrivals in arrival order
    # would start F1 at 0, a whole unit early.
    order = Order.of([(1, "fwd"), (0, "fwd"), (1, "bwd"), (0, "bwd")])
    run = emulate_schedule(two_owners_one_helper(), [0, 0], {0: order}, time_scale=UNIT_S * 1000)
    assert run.predicted.makespan_ms == pytest.approx(12.0)
    assert run.makespan_ms == pytest.approx(12.0, abs=0.3)
    ran = [(t.owner, t.kind) for t in run.tasks]
    assert ran == [(1, F), (0, F), (1, B), (0, B)]
    starts = {(t.owner, t.kind): t.start_ms for t in run.tasks}
    assert starts == pytest.approx({(1, F): 1.0, (0, F): 2.0, (1, B): 4.0, (0, B): 7.0}, abs=0.3)
    assert max(run.start_errors_ms()) < 0.3


def test_a_generated_schedule_emulates_to_its_makespan() -> None:
    sc = generate("resnet101", 8, 3, "high", seed=2)
    schedule = solve(sc, Method.FAST, seed=2)
    run = emulate_schedule(sc, schedule.assignment, schedule.orders(),
                           time_scale=1000 / schedule.makespan_ms)  # ~1 s  # fmt: skip
    assert len(run.tasks) == 2 * sc.num_owners
    assert {(t.owner, t.helper) for t in run.tasks} == {
        (k, h) for k, h in enumerate(schedule.assignment)
    }
    assert run.error == pytest.approx(0.0, abs=0.01)
    assert max(run.start_errors_ms()) < 0.01 * schedule.makespan_ms


def test_a_schedule_for_other_data_owners_is_refused() -> None:
    order = Order.of([(0, "fwd"), (0, "bwd")])
    with pytest.raises(ConfigError, match="assignment has 1 entries; expected 2"):
        emulate_schedule(two_owners_one_helper(), [0], {0: order})


def test_emulate_schedule_command(tmp_path: Path) -> None:
    runner = CliRunner()
    scenario, schedule = tmp_path / "scenario.json", tmp_path / "schedule.json"
    made = runner.invoke(app, ["schedule", "--generate", "--owners", "5", "--helpers", "2",
                               "--save-scenario", str(scenario), "--json"])  # fmt: skip
    assert made.exit_code == 0, made.output
    schedule.write_text(made.stdout)
    makespan_ms = json.loads(made.stdout)["makespan_ms"]
    args = ["emulate", "--scenario", str(scenario), "--schedule", str(schedule),
            "--time-scale", str(800 / makespan_ms), "--out", str(tmp_path / "run")]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["predicted_makespan_ms"] == pytest.approx(makespan_ms)
    assert report["measured_makespan_ms"] == pytest.approx(makespan_ms, rel=0.01)
    assert report["tasks"] == 10
    assert (tmp_path / "run" / "events.jsonl").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule", "x.json", "--policy", "backward-first"], "drop --policy"),
        (["--schedule", "x.json", "--nodes", "a"], "drop --nodes"),
        ([], "a scenario is emulated with a schedule: add --schedule FILE"),
    ],
)
def test_emulate_refuses_options_that_do_not_go_with_a_schedule(
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(["emulate", "--scenario", "s.json", *args], monkeypatch, capsys)
    assert code == 2
    assert message in err
