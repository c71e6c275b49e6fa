"""The wire format: a Message as ZeroMQ frames, and back, validated; nothing is ever unpickled.

Frames: ``[header, meta?, tensor?, weights?]``. The header is ``b"MPSL"``, one version byte, then
fixed binary fields (``HEAD``: the kind's code, which frames follow, the tensor's dtype code and
number of dimensions, the ids, the lengths of what follows) and the variable part: the tensor's
shape, the sender's name, the text and the owners. Binary rather than JSON because the small
messages of every batch and round pay the header's cost in Python on both ends (docs/deploy.md,
Measured). Meta is the JSON body of a control message (``deploy/control.py``: registration,
assignment, metrics), validated against its kind's model; runtime messages have none. The tensor
travels as its raw bytes (C order, little endian); named tensors (weights) as one safetensors
blob. A decoder that meets anything unexpected raises WireError naming what was wrong; it never
trusts a size it has not checked against the bytes actually received.
"""

from __future__ import annotations

import math
import re
import struct
import sys
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
VERSION = 2
MAX_HEADER_BYTES = 64 * 1024
MAX_DIMS = 8
MAX_TEXT = 4096  # characters of a message's text
DEFAULT_MAX_MESSAGE_BYTES = 2 * 1024**3

# magic, version, kind, flags, dtype, dimensions, owner, batch, round, samples, virtual bytes,
# value, then the lengths of the sender's name (bytes), the text (UTF-8 bytes), the owners (count)
HEAD = struct.Struct("<4sBBBBBiiiiqdBHI")
META, TENSOR, WEIGHTS = 1, 2, 4  # flags: the frames after the header, in this order

# Codes on the wire; fixed once given (docs/formats.md), so never renumber.
KIND_CODES: dict[Kind | ControlKind, int] = {
    Kind.ACTIVATION: 1,
    Kind.GRADIENT: 2,
    Kind.ROUND_START: 3,
    Kind.ROUND_DONE: 4,
    Kind.AGGREGATE: 5,
    Kind.WEIGHTS: 6,
    Kind.DROP: 7,
    Kind.LEFT: 8,
    Kind.STOP: 9,
    Kind.ERROR: 10,
    ControlKind.REGISTER: 32,
    ControlKind.ASSIGN: 33,
    ControlKind.READY: 34,
    ControlKind.HEARTBEAT: 35,
    ControlKind.METRICS: 36,
    ControlKind.ROUTE: 37,
    ControlKind.RECORDS: 38,
}
_KINDS = {code: kind for kind, code in KIND_CODES.items()}

# Every dtype a tensor on the wire may have, by code; anything else is refused.
DTYPE_CODES: dict[torch.dtype, int] = {
    torch.float32: 1,
    torch.float16: 2,
    torch.bfloat16: 3,
    torch.float64: 4,
    torch.int64: 5,
    torch.int32: 6,
    torch.uint8: 7,
}
_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}
_ITEMSIZE = {
    code: torch.empty(0, dtype=dtype).element_size() for dtype, code in DTYPE_CODES.items()
}
DTYPES = sorted(str(dtype).removeprefix("torch.") for dtype in DTYPE_CODES)
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ID_LIMIT = 2**31
_BYTES_LIMIT = 2**62


class WireError(ProtocolError):
    """Bytes that are not a valid MP-SL message."""


Frame = bytes | memoryview
Packet = Message | Control


def encode(msg: Packet) -> list[Frame]:
    """The frames of ``msg``; the tensor's bytes are not copied."""
    if sys.byteorder != "little":
        raise WireError("the wire format is little endian; this host is not")
    if isinstance(msg, Control):
        head = _head(msg, META, 0, (), msg.sender.encode(), b"", ())
        return [head, msg.body.model_dump_json().encode()]
    flags, dtype = 0, 0
    shape: tuple[int, ...] = ()
    frames: list[Frame] = []
    if msg.tensor is not None:
        t = msg.tensor.detach()
        if t.dtype not in DTYPE_CODES:
            raise WireError(f"tensor dtype {t.dtype} cannot be sent; allowed: {DTYPES}")
        flags, dtype, shape = TENSOR, DTYPE_CODES[t.dtype], tuple(t.shape)
        frames.append(_raw_bytes(t))
    if msg.tensors:
        flags |= WEIGHTS
        frames.append(
            save_safetensors({k: v.detach().contiguous() for k, v in msg.tensors.items()})
        )
    head = _head(msg, flags, dtype, shape, msg.sender.encode(), msg.text.encode(), msg.owners)
    return [head, *frames]


def _head(
    msg: Packet,
    flags: int,
    dtype: int,
    shape: tuple[int, ...],
    sender: bytes,
    text: bytes,
    owners: tuple[int, ...],
) -> bytes:
    """The header frame: the fixed fields, then shape, sender, text and owners."""
    ids = (-1, -1, -1, 0, 0, 0.0)
    if isinstance(msg, Message):
        ids = (msg.owner, msg.batch, msg.round, msg.samples, msg.virtual_bytes, msg.value)
    try:
        fixed = HEAD.pack(
            MAGIC,
            VERSION,
            KIND_CODES[msg.kind],
            flags,
            dtype,
            len(shape),
            *ids,
            len(sender),
            len(text),
            len(owners),
        )
        variable = struct.pack(f"<{len(shape)}I", *shape), struct.pack(f"<{len(owners)}I", *owners)
    except struct.error as exc:  # a field out of its range: the decoder would refuse it
        raise WireError(f"{msg.kind.value} message cannot be encoded: {exc}") from None
    return b"".join((fixed, variable[0], sender, text, variable[1]))


def decode(frames: Sequence[Frame], max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> Packet:
    """The Message or Control in ``frames``; raises WireError for anything malformed."""
    if not frames:
        raise WireError("empty message")
    if sum(len(memoryview(f)) for f in frames) > max_bytes:
        raise WireError(f"message larger than the limit of {max_bytes} bytes")
    header = _header(frames[0])
    (kind_code, flags, dtype, ndim, owner, batch, round_, samples, virtual_bytes, value) = header[
        2:12
    ]
    kind = _KINDS.get(kind_code)
    if kind is None:
        raise WireError(f"unknown message kind code {kind_code}")
    if flags & ~(META | TENSOR | WEIGHTS):
        raise WireError(f"unknown flags {flags:#04x} in the header")
    expected = 1 + bin(flags).count("1")
    if len(frames) != expected:
        raise WireError(f"header announces {expected} frames, got {len(frames)}")
    shape, sender, text, owners = _variable(frames[0], header)
    if isinstance(kind, ControlKind):
        if flags != META:
            raise WireError(f"a {kind.value} message is one meta frame, no tensors")
        return Control(kind, sender, _body(kind, frames[1]))
    if flags & META:
        raise WireError(f"a {kind.value} message carries no meta frame")
    tensor = None
    if flags & TENSOR:
        tensor = _tensor(dtype, shape, frames[1])
    elif dtype or ndim:
        raise WireError(f"the header gives a dtype ({dtype}) or a shape but no tensor frame")
    for key, number in (
        ("owner", owner),
        ("batch", batch),
        ("round", round_),
        ("samples", samples),
    ):
        if number < -1:
            raise WireError(f"field '{key}' must be an integer in [-1, {_ID_LIMIT}), got {number}")
    if not -1 <= virtual_bytes < _BYTES_LIMIT:
        raise WireError(
            f"field 'virtual_bytes' must be in [-1, {_BYTES_LIMIT}), got {virtual_bytes}"
        )
    return Message(
        kind,
        sender,
        owner=owner,
        batch=batch,
        round=round_,
        tensor=tensor,
        tensors=_weights(frames[-1]) if flags & WEIGHTS else {},
        samples=samples,
        value=value,
        virtual_bytes=virtual_bytes,
        text=text,
        owners=owners,
    )


def _raw_bytes(t: torch.Tensor) -> memoryview:
    t = t.contiguous()
    if t.numel() == 0:
        return memoryview(b"")
    # A uint8 view of the same storage: works for every dtype, bfloat16 included, without copying.
    return memoryview(t.view(-1).view(torch.uint8).numpy().data)


def _header(frame: Frame) -> tuple[Any, ...]:
    """The fixed fields of a header frame, its magic, version and length checked."""
    view = memoryview(frame)
    if view.nbytes > MAX_HEADER_BYTES:
        raise WireError(f"header longer than {MAX_HEADER_BYTES} bytes")
    if view[:4] != MAGIC:
        raise WireError("not an MP-SL message (bad magic)")
    if view.nbytes < 5 or view[4] != VERSION:
        version = view[4] if view.nbytes > 4 else "missing"
        raise WireError(f"wire version {version} not supported (this peer speaks {VERSION})")
    if view.nbytes < HEAD.size:
        raise WireError(f"header of {view.nbytes} bytes, shorter than its {HEAD.size} fixed bytes")
    return HEAD.unpack_from(view)


def _variable(frame: Frame, header: tuple[Any, ...]) -> tuple[list[int], str, str, tuple[int, ...]]:
    """The shape, sender, text and owners after the fixed fields, each checked."""
    ndim, sender_len, text_len, count = header[5], header[12], header[13], header[14]
    if ndim > MAX_DIMS:
        raise WireError(f"tensor shape must have at most {MAX_DIMS} dimensions, got {ndim}")
    size = HEAD.size + 4 * ndim + sender_len + text_len + 4 * count
    view = memoryview(frame)
    if view.nbytes != size:
        raise WireError(f"header of {view.nbytes} bytes, its lengths announce {size}")
    at = HEAD.size
    shape = list(struct.unpack_from(f"<{ndim}I", view, at))
    at += 4 * ndim
    if any(d >= _ID_LIMIT for d in shape):
        raise WireError(f"tensor shape must be non-negative ints below {_ID_LIMIT}, got {shape}")
    sender = bytes(view[at : at + sender_len]).decode("ascii", "replace")
    at += sender_len
    if not _NAME.match(sender):
        raise WireError("field 'sender' must be a name of 1-64 letters, digits or _.:-")
    try:
        text = str(view[at : at + text_len], "utf-8")
    except UnicodeDecodeError:
        raise WireError("field 'text' is not UTF-8") from None
    at += text_len
    if len(text) > MAX_TEXT:
        raise WireError(f"field 'text' must be a string of at most {MAX_TEXT} characters")
    owners = struct.unpack_from(f"<{count}I", view, at)
    if any(k >= _ID_LIMIT for k in owners):
        raise WireError(f"field 'owners' must hold data owner indices in [0, {_ID_LIMIT})")
    return shape, sender, text, owners


def _body(kind: ControlKind, frame: Frame) -> Any:
    try:
        return BODY[kind].model_validate_json(bytes(frame))
    except ValidationError as exc:
        raise WireError(describe_validation(exc, f"{kind.value} meta frame")) from None


def _tensor(code: int, shape: list[int], frame: Frame) -> torch.Tensor:
    dtype = _DTYPES.get(code)
    if dtype is None:
        raise WireError(f"tensor dtype code {code} not allowed; allowed: {DTYPES}")
    nbytes = math.prod(shape) * _ITEMSIZE[code]
    view = memoryview(frame)
    if view.nbytes != nbytes:
        name = str(dtype).removeprefix("torch.")
        raise WireError(f"tensor {name}{shape} needs {nbytes} bytes, the frame has {view.nbytes}")
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    if view.readonly:
        view = memoryview(bytearray(view))
    # Zero copy: the tensor keeps the received frame alive.
    return torch.frombuffer(view, dtype=dtype).view(shape)


def _weights(frame: Frame) -> dict[str, torch.Tensor]:
    try:
        tensors = load_safetensors(bytes(frame))
    except Exception as exc:  # the parser's errors vary by version; all mean "bad blob"
        raise WireError(f"weights are not a valid safetensors blob: {exc}") from None
    bad = [k for k, v in tensors.items() if v.dtype not in DTYPE_CODES]
    if bad:
        raise WireError(f"weights {bad[:3]} have a dtype that is not allowed")
    return tensors
