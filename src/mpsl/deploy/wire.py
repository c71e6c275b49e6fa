"""The wire format: a Message as ZeroMQ frames, and back, validated; nothing is ever unpickled.

Frames: ``[header, meta?, tensor?, weights?]``. The header is ``b"MPSL"``, one version byte, then
UTF-8 JSON (at most 64 KiB) with the message's ids, which frames follow and, for a tensor, its
dtype and shape. Meta is the JSON body of a control message (``deploy/control.py``: registration,
assignment, metrics), validated against its kind's model; runtime messages have none. The tensor
travels as its raw bytes (C order, little endian); named tensors (weights) as one safetensors
blob. A decoder that meets anything unexpected raises WireError naming what was wrong; it never
trusts a size it has not checked against the bytes actually received.
"""

from __future__ import annotations

import json
import math
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import ValidationError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from mpsl.deploy.control import BODY, Control, ControlKind
from mpsl.errors import ProtocolError
from mpsl.fileformat import describe_validation
from mpsl.runtime.messages import Kind, Message

MAGIC = b"MPSL"
VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
MAX_DIMS = 8
DEFAULT_MAX_MESSAGE_BYTES = 2 * 1024**3

# Every dtype a tensor on the wire may have; anything else is refused.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ID_LIMIT = 2**31


class WireError(ProtocolError):
    """Bytes that are not a valid MP-SL message."""


Frame = bytes | memoryview
Packet = Message | Control


def encode(msg: Packet) -> list[Frame]:
    """The frames of ``msg``; the tensor's bytes are not copied."""
    if sys.byteorder != "little":
        raise WireError("the wire format is little endian; this host is not")
    if isinstance(msg, Control):
        head: dict[str, Any] = {"kind": msg.kind.value, "sender": msg.sender, "meta": True}
        return [_head(head), msg.body.model_dump_json().encode()]
    header: dict[str, Any] = {
        "kind": msg.kind.value,
        "sender": msg.sender,
        "owner": msg.owner,
        "batch": msg.batch,
        "round": msg.round,
        "samples": msg.samples,
        "value": _float_to_json(msg.value),
        "virtual_bytes": msg.virtual_bytes,
        "text": msg.text,
        "owners": list(msg.owners),
        "tensor": None,
        "weights": bool(msg.tensors),
    }
    frames: list[Frame] = []
    if msg.tensor is not None:
        t = msg.tensor.detach()
        if t.dtype not in _DTYPE_NAMES:
            raise WireError(f"tensor dtype {t.dtype} cannot be sent; allowed: {sorted(DTYPES)}")
        header["tensor"] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape)}
        frames.append(_raw_bytes(t))
    if msg.tensors:
        frames.append(
            save_safetensors({k: v.detach().contiguous() for k, v in msg.tensors.items()})
        )
    return [_head(header), *frames]


def _head(header: dict[str, Any]) -> bytes:
    return MAGIC + bytes([VERSION]) + json.dumps(header, separators=(",", ":")).encode()


def decode(frames: Sequence[Frame], max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Packet:
    """The Message or Control in ``frames``; raises WireError for anything malformed."""
    if not frames:
        raise WireError("empty message")
    if sum(len(memoryview(f)) for f in frames) > max_bytes:
        raise WireError(f"message larger than the limit of {max_bytes} bytes")
    header = _header(frames[0])
    kind = _kind(header)
    tensor_spec = header.get("tensor")
    flags = [_flag(header, "meta"), tensor_spec is not None, _flag(header, "weights")]
    expected = 1 + sum(flags)
    if len(frames) != expected:
        raise WireError(f"header announces {expected} frames, got {len(frames)}")
    if isinstance(kind, ControlKind):
        if flags != [True, False, False]:
            raise WireError(f"a {kind.value} message is one meta frame, no tensors")
        return Control(kind, _name(header, "sender"), _body(kind, frames[1]))
    if flags[0]:
        raise WireError(f"a {kind.value} message carries no meta frame")
    body = list(frames[1:])
    tensor = _tensor(tensor_spec, body.pop(0)) if tensor_spec is not None else None
    tensors = _weights(body.pop(0)) if flags[2] else {}
    return Message(
        kind,
        _name(header, "sender"),
        owner=_int(header, "owner", -1),
        batch=_int(header, "batch", -1),
        round=_int(header, "round", -1),
        tensor=tensor,
        tensors=tensors,
        samples=_int(header, "samples", 0),
        value=_float(header, "value"),
        virtual_bytes=_int(header, "virtual_bytes", 0, limit=2**62),
        text=_str(header, "text", 4096),
        owners=_owners(header),
    )


def _raw_bytes(t: torch.Tensor) -> memoryview:
    t = t.contiguous()
    if t.numel() == 0:
        return memoryview(b"")
    # A uint8 view of the same storage: works for every dtype, bfloat16 included, without copying.
    return memoryview(t.view(-1).view(torch.uint8).numpy().data)


def _header(frame: Frame) -> dict[str, Any]:
    raw = bytes(frame[: MAX_HEADER_BYTES + 6])
    if len(raw) > MAX_HEADER_BYTES + 5:
        raise WireError(f"header longer than {MAX_HEADER_BYTES} bytes")
    if raw[:4] != MAGIC:
        raise WireError("not an MP-SL message (bad magic)")
    if len(raw) < 5 or raw[4] != VERSION:
        version = raw[4] if len(raw) > 4 else "missing"
        raise WireError(f"wire version {version} not supported (this peer speaks {VERSION})")
    try:
        header = json.loads(raw[5:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    return header


def _kind(header: dict[str, Any]) -> Kind | ControlKind:
    value = str(header.get("kind"))
    for kinds in (Kind, ControlKind):
        try:
            return kinds(value)
        except ValueError:
            continue
    raise WireError(f"unknown message kind {value!r}")


def _int(header: dict[str, Any], key: str, default: int, limit: int = _ID_LIMIT) -> int:
    value = header.get(key, default)
    if type(value) is not int or not -1 <= value < limit:
        raise WireError(f"field '{key}' must be an integer in [-1, {limit}), got {value!r}")
    return value


def _owners(header: dict[str, Any]) -> tuple[int, ...]:
    value = header.get("owners", [])
    if not isinstance(value, list) or len(value) > 1 << 20:
        raise WireError("field 'owners' must be a list of data owner indices")
    if any(type(k) is not int or not 0 <= k < _ID_LIMIT for k in value):
        raise WireError(f"field 'owners' must hold data owner indices in [0, {_ID_LIMIT})")
    return tuple(value)


def _float(header: dict[str, Any], key: str) -> float:
    value = header.get(key, 0.0)
    if value in ("nan", "inf", "-inf"):
        return float(value)
    if type(value) not in (int, float):
        raise WireError(f"field '{key}' must be a number, got {value!r}")
    return float(value)


def _float_to_json(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _str(header: dict[str, Any], key: str, limit: int) -> str:
    value = header.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise WireError(f"field '{key}' must be a string of at most {limit} characters")
    return value


def _name(header: dict[str, Any], key: str) -> str:
    value = header.get(key)
    if not isinstance(value, str) or not _NAME.match(value):
        raise WireError(f"field '{key}' must be a name of 1-64 letters, digits or _.:-")
    return value


def _flag(header: dict[str, Any], key: str) -> bool:
    value = header.get(key, False)
    if not isinstance(value, bool):
        raise WireError(f"field '{key}' must be true or false, got {value!r}")
    return value


def _body(kind: ControlKind, frame: Frame) -> Any:
    try:
        return BODY[kind].model_validate_json(bytes(frame))
    except ValidationError as exc:
        raise WireError(describe_validation(exc, f"{kind.value} meta frame")) from None


def _tensor(spec: Any, frame: Frame) -> torch.Tensor:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape"}:
        raise WireError('field \'tensor\' must be {"dtype", "shape"}')
    dtype = DTYPES.get(spec["dtype"]) if isinstance(spec["dtype"], str) else None
    if dtype is None:
        raise WireError(f"tensor dtype {spec['dtype']!r} not allowed; allowed: {sorted(DTYPES)}")
    shape = spec["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(d) is int and 0 <= d < _ID_LIMIT for d in shape)
    ):
        raise WireError(f"tensor shape must be at most {MAX_DIMS} non-negative ints, got {shape!r}")
    itemsize = torch.empty(0, dtype=dtype).element_size()
    nbytes = math.prod(shape) * itemsize
    view = memoryview(frame)
    if view.nbytes != nbytes:
        raise WireError(
            f"tensor {spec['dtype']}{shape} needs {nbytes} bytes, the frame has {view.nbytes}"
        )
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    if view.readonly:
        view = memoryview(bytearray(view))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # frombuffer warns about buffers it cannot resize
        flat = torch.frombuffer(view, dtype=torch.uint8)
    # Zero copy: the tensor keeps the received frame alive.
    return flat.view(dtype).view(shape)


def _weights(frame: Frame) -> dict[str, torch.Tensor]:
    try:
        tensors = load_safetensors(bytes(frame))
    except Exception as exc:  # the parser's errors vary by version; all mean "bad blob"
        raise WireError(f"weights are not a valid safetensors blob: {exc}") from None
    bad = [k for k, v in tensors.items() if v.dtype not in _DTYPE_NAMES]
    if bad:
        raise WireError(f"weights {bad[:3]} have a dtype that is not allowed")
    return tensors
