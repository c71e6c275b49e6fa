"""Helpers shared by the subcommands: parsing lists, printing JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any

import typer

from mpsl.errors import ConfigError
from mpsl.profile.impute import Imputed

ImputeOption = Annotated[
    str | None,
    typer.Option(
        help="Estimate timings the profile lacks: ratio (a comparable device scaled by the "
        "ratio over the layers both measured) or ratio:DEVICE; default: refuse them "
        "(docs/profile.md)."
    ),
]


def split_items(text: str, option: str, example: str) -> list[str]:
    """The comma-separated items of ``text`` (spaces ignored); a ConfigError if there are none."""
    items = [item for item in text.replace(" ", "").split(",") if item]
    if not items:
        raise ConfigError(
            f"expected a comma-separated list like {example}; got '{text}', an empty list: give "
            f"at least one item, or leave {option} out",
            field=option,
        )
    return items


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """Parse '3,32,32' into (3, 32, 32); errors name the option."""
    items = split_items(text, option, "3,32,32")
    try:
        return tuple(int(v) for v in items)
    except ValueError:
        raise ConfigError(
            f"expected comma-separated integers like 3,32,32; got '{text}'", field=option
        ) from None


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


def imputed_lines(filled: Iterable[Imputed]) -> list[str]:
    """One line per imputed timing, for people: what was estimated and from what."""
    return [
        f"imputed: {f.device} layer {f.layer} ({f.name}) = {f.reference} x {f.ratio:.3f} "
        f"(ratio over {f.shared_layers} layers both measured)"
        for f in filled
    ]
