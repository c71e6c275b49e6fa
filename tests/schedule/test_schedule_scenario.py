"""Scenario validation, file round trip, and infeasible memory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mpsl.errors import FormatError, InfeasibleError
from mpsl.fileformat import parse_model
from mpsl.schedule import Scenario, solve
from mpsl.schedule.scenario import check_capacity, trivial_lower_bound


def _data(K: int = 2, H: int = 2, value: float = 1.0) -> dict:
    m = [[value] * H for _ in range(K)]
    return {
        "release_ms": m, "fwd_ms": m, "lag_ms": m, "bwd_ms": m, "tail_ms": m,
        "demand_bytes": [1] * K, "capacity_bytes": [K] * H,
    }  # fmt: skip


def _error(data: dict) -> str:
    with pytest.raises(FormatError) as info:
        parse_model(Scenario, data, "s.json")
    return str(info.value)


def test_valid_scenario_has_its_sizes() -> None:
    sc = parse_model(Scenario, _data(3, 2), "s.json")
    assert (sc.num_owners, sc.num_helpers) == (3, 2)
    assert sc.path_ms(0, 1) == 5.0
    assert trivial_lower_bound(sc) == 5.0


def test_wrong_row_count_names_field_and_expectation() -> None:
    data = _data(3, 2)
    data["lag_ms"] = data["lag_ms"][:2]
    msg = _error(data)
    assert "lag_ms has 2 rows; expected 3" in msg


def test_wrong_column_count_names_field_and_row() -> None:
    data = _data(3, 2)
    data["fwd_ms"] = [[1.0, 1.0], [1.0], [1.0, 1.0]]
    msg = _error(data)
    assert "fwd_ms row 1" in msg and "expected 2" in msg


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_negative_or_non_finite_entry_names_field_row_and_column(bad: float) -> None:
    data = _data(2, 3)
    data["tail_ms"] = [[1.0, 1.0, 1.0], [1.0, 1.0, bad]]
    msg = _error(data)
    assert "field 'tail_ms'" in msg and "row 1" in msg and "column 2" in msg


def test_unknown_field_and_negative_demand_are_rejected() -> None:
    data = _data()
    data["extra"] = 1
    assert "extra" in _error(data)
    data = _data()
    data["demand_bytes"] = [1, -5]
    assert "demand_bytes" in _error(data)


def test_names_must_match_sizes() -> None:
    data = _data(2, 2)
    data["helper_names"] = ["a"]
    assert "helper_names has 1 entries; expected 2" in _error(data)


def test_file_round_trip_and_errors_name_the_file(tmp_path: Path) -> None:
    sc = parse_model(Scenario, {**_data(2, 1), "owner_names": ["a", "b"]}, "s")
    path = tmp_path / "sc.json"
    sc.save(path)
    assert Scenario.load(path) == sc
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**_data(2, 1), "release_ms": [[1.0]]}))
    with pytest.raises(FormatError, match=r"bad\.json"):
        Scenario.load(bad)


def test_owner_larger_than_every_helper_is_infeasible() -> None:
    sc = parse_model(
        Scenario, {**_data(2, 2), "demand_bytes": [1, 9], "capacity_bytes": [4, 5]}, "s"
    )
    with pytest.raises(InfeasibleError) as info:
        check_capacity(sc)
    assert "9 bytes" in str(info.value) and "h0=4" in str(info.value)


def test_total_demand_over_total_capacity_is_infeasible_for_every_method() -> None:
    sc = parse_model(
        Scenario, {**_data(3, 2), "demand_bytes": [3, 3, 3], "capacity_bytes": [4, 4]}, "s"
    )
    for method in ("exact", "fast", "balanced-greedy", "random", "auto"):
        with pytest.raises(InfeasibleError, match="need 9 bytes"):
            solve(sc, method, time_limit_s=1)


def test_packing_infeasible_although_totals_fit() -> None:
    # three owners of 6 bytes, two helpers of 10: the totals fit, but each helper holds one
    sc = parse_model(
        Scenario, {**_data(3, 2), "demand_bytes": [6, 6, 6], "capacity_bytes": [10, 10]}, "s"
    )
    for method in ("exact", "fast", "balanced-greedy", "random"):
        with pytest.raises(InfeasibleError):
            solve(sc, method, time_limit_s=2)
