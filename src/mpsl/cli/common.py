"""Helpers shared by the subcommands: parsing lists, printing JSON."""

from __future__ import annotations

import json
from typing import Any

from mpsl.errors import ConfigError


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """Parse '3,32,32' into (3, 32, 32); errors name the option."""
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(
            f"expected comma-separated integers like 3,32,32; got '{text}'", field=option
        ) from None
    if not values:
        raise ConfigError("expected at least one integer", field=option)
    return values


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    print(json.dumps(obj, indent=1))


def parse_stragglers(text: str) -> dict[int, float]:
    """Parse '0=2,5=1.5' (data-owner index = factor)."""
    result: dict[int, float] = {}
    for item in filter(None, text.replace(" ", "").split(",")):
        index, sep, factor = item.partition("=")
        try:
            if not sep:
                raise ValueError
            result[int(index)] = float(factor)
        except ValueError:
            raise ConfigError(
                f"expected OWNER=FACTOR pairs like 0=2,5=1.5; got '{item}'", field="--stragglers"
            ) from None
    return result
