"""Loading and saving the JSON/TOML forms of MP-SL's data types, with errors that name the field."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mpsl.errors import FormatError

M = TypeVar("M", bound=BaseModel)


def describe_validation(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: field 'a.b[2].c': message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
        lines.append(f"{source}: field '{loc or '<root>'}': {err['msg']}{got}")
    return "\n".join(lines)


def parse_model(cls: type[M], data: Any, source: str) -> M:
    """Validate ``data`` as ``cls``; a FormatError names the source and each bad field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise FormatError(describe_validation(exc, source)) from None


def read_data(path: str | Path) -> Any:
    """Parse a JSON or TOML (by suffix) file; errors name the file and the position."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: file not found")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FormatError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from None


def load_model(cls: type[M], path: str | Path) -> M:
    """Read and validate a file as ``cls``."""
    return parse_model(cls, read_data(path), str(path))


def save_model(obj: BaseModel, path: str | Path) -> None:
    """Write ``obj`` as indented JSON."""
    Path(path).write_text(obj.model_dump_json(indent=1, exclude_none=True) + "\n")
