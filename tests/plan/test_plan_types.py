"""The Plan file: round trip, and validation that names the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpsl.errors import FormatError
from mpsl.plan import Plan, PlanPart


def sample() -> Plan:
    return Plan(
        model="vgg19",
        num_layers=25,
        feasible=True,
        cuts=[3, 9, 20],
        parts=[
            PlanPart(node="vm1", first_layer=4, last_layer=9),
            PlanPart(node="vm2", first_layer=10, last_layer=20),
        ],
        objective="epoch",
        objective_value=12.5,
        predicted={"round_s": 12.5},
    )


def test_round_trip(tmp_path: Path) -> None:
    plan = sample()
    plan.save(tmp_path / "p.json")
    assert Plan.load(tmp_path / "p.json") == plan
    assert plan.nodes == ["vm1", "vm2"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"cuts": [3, 9]}, "parts need"),
        ({"cuts": [3, 3, 20]}, "increase"),
        ({"cuts": [3, 9, 25]}, "1..24"),
        (
            {
                "parts": [
                    {"node": "vm1", "first_layer": 4, "last_layer": 8},
                    {"node": "vm2", "first_layer": 9, "last_layer": 20},
                ]
            },
            "parts\\[0\\]",
        ),
        (
            {
                "parts": [
                    {"node": "vm1", "first_layer": 4, "last_layer": 9},
                    {"node": "vm1", "first_layer": 10, "last_layer": 20},
                ]
            },
            "one part",
        ),
        ({"feasible": False}, "reason"),
        ({"objective": "speed"}, "objective"),
    ],
)
def test_invalid_plan_files_name_the_problem(tmp_path: Path, change: dict, words: str) -> None:
    data = {**sample().model_dump(mode="json"), **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=words):
        Plan.load(path)


def test_infeasible_plan_keeps_its_reason(tmp_path: Path) -> None:
    plan = Plan(model="vgg19", num_layers=25, feasible=False, reason="node 'a' is short by 1 GB")
    plan.save(tmp_path / "p.json")
    assert Plan.load(tmp_path / "p.json").reason == plan.reason
