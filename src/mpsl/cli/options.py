"""Typer options made from pydantic fields, so that each run option is declared once, as a field.

A command body declares its own options (``--config``, ``--engine``, ...) as parameters and takes
every field option as ``**options``. ``field_command`` hands typer a function whose signature has,
in place of ``**options``, one keyword option per field: the flag is the field's name with dashes
(plus any alias in ``ALIASES``), the help is the field's description and default, and the type is
the field's type made optional, so that None means "not given" and the config file or the model's
default decides. A list field is comma-separated text (``--cuts 3,5,7``). Typer builds options
from ``__signature__`` and ``__annotations__``, its ordinary input: no code is generated and
typer's parsing and help stay as they are. The body receives only the options given, lists
parsed, ready to validate (``mpsl.cli.job.load_job``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from pydantic.fields import FieldInfo

from mpsl.cli.common import parse_ints, split_items

ConfigFile = Annotated[
    Path | None,
    typer.Option(help="Run config, TOML or JSON (docs/formats.md); flags override it."),
]

# Flags older than the field names, kept working.
ALIASES: dict[str, tuple[str, ...]] = {"compute_nodes": ("--hops",)}


def flags(name: str) -> tuple[str, ...]:
    """The flags of field ``name``: ``--name-with-dashes``, then its aliases."""
    return ("--" + name.replace("_", "-"), *ALIASES.get(name, ()))


def without_none(annotation: Any) -> Any:
    """``annotation`` without its ``| None``: the type of a given value."""
    if get_origin(annotation) in (Union, UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not NoneType]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _list_item(info: FieldInfo) -> type | None:
    """The item type of a list field (int or str); None for any other field."""
    bare = without_none(info.annotation)
    if get_origin(bare) is not list:
        return None
    (item,) = get_args(bare)
    if item not in (int, str):
        raise TypeError(f"a list option holds int or str, not {item}")
    return item


def help_text(info: FieldInfo) -> str:
    """The field's description, with the field's default where it has one."""
    text = info.description or ""
    default = info.get_default(call_default_factory=True)
    # the flag's own default is None (not given): the field's is the one that applies
    return text if default is None else f"{text.removesuffix('.')} (default: {default})."


def _parameter(name: str, info: FieldInfo) -> inspect.Parameter:
    """The keyword parameter typer reads as the option of field ``name``."""
    option = typer.Option(*flags(name), help=help_text(info), show_default=False)
    kind = str if _list_item(info) else without_none(info.annotation)
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],
    )


def parse_value(name: str, info: FieldInfo, value: Any) -> Any:
    """A flag's value as the field takes it: comma-separated text split into a list."""
    item = _list_item(info)
    if item is None:
        return value
    if item is int:
        return list(parse_ints(value, flags(name)[0]))
    return split_items(value, flags(name)[0], "vm2,vm1")


def field_command(
    body: Callable[..., None], fields: Mapping[str, FieldInfo], exclude: Collection[str] = ()
) -> Callable[..., None]:
    """``body`` as a typer command whose ``**options`` are one option per field of ``fields``."""
    options = {name: info for name, info in fields.items() if name not in exclude}
    signature = inspect.signature(body, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    if len(own) == len(signature.parameters):
        raise TypeError(f"{body.__name__} takes no **options to receive the field options")
    clash = sorted({p.name for p in own} & options.keys())
    if clash:
        raise TypeError(f"{body.__name__}'s parameters {clash} are field options too")
    parameters = own + [_parameter(name, info) for name, info in options.items()]

    @functools.wraps(body)
    def command(**values: Any) -> None:
        given = {name: values.pop(name) for name in options}
        parsed = {n: parse_value(n, options[n], v) for n, v in given.items() if v is not None}
        body(**values, **parsed)

    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command
