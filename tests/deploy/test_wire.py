"""The wire format: every message survives the trip; anything malformed is a WireError, nothing else."""

import json
import math
import struct

import pytest
import torch
from deploy_helpers import raw_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpsl.deploy.control import (
    Assignment,
    Control,
    ControlKind,
    Metrics,
    Record,
    Route,
    ready,
    registration,
)
from mpsl.deploy.wire import (
    HEAD,
    KIND_CODES,
    MAGIC,
    META,
    TENSOR,
    VERSION,
    WEIGHTS,
    WireError,
    decode,
    encode,
)
from mpsl.runtime.config import RunConfig
from mpsl.runtime.layout import RoleKind
from mpsl.runtime.messages import Kind, Message
from mpsl.tasks import TaskKind, TaskRecord

RECORD = TaskRecord("node1", 0, 0, 0, TaskKind.FWD, 0.0, 1.0, 8).to_json()


def roundtrip(msg: Message) -> Message:
    got = decode([bytes(f) for f in encode(msg)])
    assert isinstance(got, Message)
    return got


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64])
def test_tensor_roundtrip_keeps_dtype_shape_and_values(dtype):
    t = (torch.randn(3, 4, 5) * 10).to(dtype)
    got = roundtrip(Message(Kind.ACTIVATION, "owner1", owner=0, batch=7, round=2, tensor=t))
    assert got.kind is Kind.ACTIVATION and (got.sender, got.owner, got.batch, got.round) == (
        "owner1",
        0,
        7,
        2,
    )
    assert got.tensor is not None and got.tensor.dtype == dtype and got.tensor.shape == t.shape
    assert torch.equal(got.tensor, t)


def test_non_contiguous_and_empty_tensors():
    t = torch.arange(12.0).reshape(3, 4).t()
    assert torch.equal(roundtrip(Message(Kind.GRADIENT, "node1", tensor=t)).tensor, t)
    empty = roundtrip(Message(Kind.GRADIENT, "node1", tensor=torch.empty(0, 3))).tensor
    assert empty is not None and empty.shape == (0, 3)


def test_received_tensor_is_writable_and_owned():
    got = roundtrip(Message(Kind.ACTIVATION, "node1", tensor=torch.ones(4)))
    assert got.tensor is not None
    got.tensor.add_(1)  # must not crash on a read-only buffer
    assert got.tensor.tolist() == [2.0] * 4


def test_weights_and_scalars_roundtrip():
    weights = {"first.0.weight": torch.randn(2, 3), "last.1.bias": torch.zeros(5)}
    msg = Message(
        Kind.WEIGHTS, "aggregator", tensors=weights, samples=42, value=float("nan"), text="ok"
    )
    got = roundtrip(msg)
    assert set(got.tensors) == set(weights)
    assert all(torch.equal(got.tensors[k], v) for k, v in weights.items())
    assert got.samples == 42 and math.isnan(got.value) and got.text == "ok"


def test_control_messages_roundtrip_typed():
    config = RunConfig(data_owners=2, cuts=[1, 3, 5], nodes=["vm2", "vm1"])
    assignment = Assignment(
        config=config,
        num_classes=10,
        input_shape=[1, 8, 8],
        routes={
            "vm2": Route(
                address="tcp://10.0.0.2:5000", public_key="k" * 40, sealed="tcp://10.0.0.2:5001"
            )
        },
        t0_wall=1.5,
        heartbeat_s=1.0,
        timeout_s=30.0,
    )
    sent = [
        registration("owner1", "tcp://127.0.0.1:4000", RoleKind.DATA_OWNER, "tcp://127.0.0.1:4001"),
        Control(ControlKind.ASSIGN, "coordinator", assignment),
        Control(
            ControlKind.METRICS,
            "vm2",
            Metrics(
                records=[
                    Record(**TaskRecord("vm2", 0, 1, 0, TaskKind.FWD, 0.5, 0.6, 64).to_json())
                ],
                peak_memory_bytes=7,
            ),
        ),
        ready("vm1"),
    ]
    for msg in sent:
        got = decode([bytes(f) for f in encode(msg)])
        assert got == msg
    got = decode([bytes(f) for f in encode(sent[1])])
    assert isinstance(got, Control) and isinstance(got.body, Assignment)
    assert got.body.config.nodes == ["vm2", "vm1"] and got.body.config.cuts == [1, 3, 5]


@pytest.mark.parametrize(
    ("kind", "body", "needle"),
    [
        ("register", {"address": "udp://x:1"}, "address"),
        ("register", {"address": "tcp://x:1", "evil": 1}, "evil"),
        ("metrics", {"peak_memory_bytes": "lots"}, "peak_memory_bytes"),
        ("metrics", {"records": [{"a": 1}]}, "records"),
        ("metrics", {"records": [{**RECORD, "kind": "nap"}]}, "kind"),
        ("assign", {"config": {}}, "num_classes"),
        ("ready", "[]", "ready meta frame"),
    ],
)
def test_control_bodies_are_validated(kind, body, needle):
    frame = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(WireError, match=needle):
        decode([raw_header(kind=KIND_CODES[ControlKind(kind)], flags=META), frame.encode()])


def test_runtime_messages_carry_no_meta_and_control_no_tensors():
    with pytest.raises(WireError, match="no meta frame"):
        decode([raw_header(flags=META), b"{}"])
    with pytest.raises(WireError, match="one meta frame"):
        decode([raw_header(kind=KIND_CODES[ControlKind.READY], flags=WEIGHTS), b"x"])


def test_nothing_is_pickled():
    frames = encode(Message(Kind.WEIGHTS, "owner1", tensors={"w": torch.ones(2)}))
    assert not any(b"\x80\x04" in bytes(f)[:2] for f in frames)  # no pickle protocol header
    fields = HEAD.unpack_from(bytes(frames[0]))
    assert fields[2] == KIND_CODES[Kind.WEIGHTS] and fields[3] == WEIGHTS


def test_every_kind_has_a_code_and_the_fields_keep_their_limits():
    for kind in [*Kind, *ControlKind]:
        assert kind in KIND_CODES
    msg = Message(
        Kind.AGGREGATE,
        "node_1.a:b-c",
        owner=2**31 - 1,
        round=0,
        virtual_bytes=2**62 - 1,
        value=float("-inf"),
        text="é" * 4096,
        owners=(0, 5, 2**31 - 1),
    )
    assert roundtrip(msg) == msg
    with pytest.raises(WireError, match="cannot be encoded"):
        encode(Message(Kind.ACTIVATION, "owner1", owner=2**31))


SHAPE_2x2 = dict(flags=TENSOR, dtype=1, shape=(2, 2))


@pytest.mark.parametrize(
    ("frames", "needle"),
    [
        ([], "empty"),
        ([b"HTTP/1.1 200"], "bad magic"),
        ([MAGIC + bytes([9]) + b"{}"], "version 9"),
        ([MAGIC + bytes([1]) + b'{"kind": "activation"}'], "version 1"),
        ([MAGIC + bytes([VERSION]) + b"\0" * 10], "shorter than"),
        ([raw_header(kind=0)], "unknown message kind code 0"),
        ([raw_header(kind=99)], "unknown message kind code 99"),
        ([raw_header(flags=8)], "unknown flags"),
        ([raw_header(sender=b"a b")], "sender"),
        ([raw_header(sender=b"")], "sender"),
        ([raw_header(sender=b"\xff" * 3)], "sender"),
        ([raw_header(text=b"\xff")], "UTF-8"),
        ([raw_header(text=b"x" * 4097)], "at most 4096"),
        ([raw_header(ids=(-2, -1, -1, 0, 0, 0.0))], "owner"),
        ([raw_header(ids=(0, -7, -1, 0, 0, 0.0))], "batch"),
        ([raw_header(ids=(0, 0, 0, -2, 0, 0.0))], "samples"),
        ([raw_header(ids=(0, 0, 0, 0, 2**62, 0.0))], "virtual_bytes"),
        ([raw_header(owners=(2**31,))], "owners"),
        ([raw_header(**SHAPE_2x2), b"\0" * 15], "needs 16 bytes"),
        ([raw_header(flags=TENSOR, dtype=42, shape=(1,)), b"\0" * 8], "not allowed"),
        ([raw_header(flags=TENSOR, dtype=1, shape=(2**31,)), b""], "shape"),
        ([raw_header(flags=TENSOR, dtype=1, shape=(1,) * 9), b"\0" * 4], "at most 8"),
        ([raw_header(dtype=1, shape=(1,))], "no tensor frame"),
        ([raw_header(**SHAPE_2x2)], "announces 2 frames"),
        ([raw_header(), b"extra"], "announces 1 frames"),
        ([raw_header(flags=WEIGHTS), b"garbage"], "safetensors"),
        ([raw_header(flags=META), b"[]"], "meta frame"),
        ([raw_header() + b"\0"], "lengths announce"),
        ([raw_header(text=b"abc")[:-1]], "lengths announce"),
        ([raw_header(owners=(1,), ndim=0) + b"\0" * 70000], "header longer"),
    ],
)
def test_malformed_frames_are_named_wire_errors(frames, needle):
    with pytest.raises(WireError, match=needle):
        decode(frames)


def test_oversized_message_is_refused_before_parsing():
    frames = encode(Message(Kind.ACTIVATION, "owner1", tensor=torch.zeros(1000)))
    with pytest.raises(WireError, match="larger than the limit"):
        decode([bytes(f) for f in frames], max_bytes=1000)


VALID = [
    [bytes(f) for f in encode(m)]
    for m in (
        Message(Kind.ACTIVATION, "owner1", owner=0, batch=1, round=0, tensor=torch.randn(2, 3)),
        Message(Kind.WEIGHTS, "owner2", owner=1, tensors={"first.w": torch.randn(3)}, samples=5),
        Control(ControlKind.METRICS, "node1", Metrics(peak_memory_bytes=5)),
    )
]


def decodes_or_wire_error(frames) -> None:
    try:
        msg = decode(frames)
    except WireError:
        return
    assert (isinstance(msg, Message) and isinstance(msg.kind, Kind)) or (
        isinstance(msg, Control) and isinstance(msg.kind, ControlKind)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), min_size=0, max_size=4))
def test_fuzz_random_frames(frames):
    decodes_or_wire_error(frames)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(range(len(VALID))),
    st.data(),
)
def test_fuzz_mutated_valid_messages(which, data):
    frames = [bytearray(f) for f in VALID[which]]
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(frames) - 1))
        op = data.draw(st.sampled_from(["flip", "truncate", "insert", "drop_frame", "dup_frame"]))
        frame = frames[i]
        if op == "flip" and frame:
            pos = data.draw(st.integers(0, len(frame) - 1))
            frame[pos] ^= data.draw(st.integers(1, 255))
        elif op == "truncate":
            del frame[data.draw(st.integers(0, len(frame))) :]
        elif op == "insert":
            pos = data.draw(st.integers(0, len(frame)))
            frame[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "drop_frame" and len(frames) > 1:
            frames.pop(i)
        elif op == "dup_frame":
            frames.insert(i, bytearray(frame))
    decodes_or_wire_error([bytes(f) for f in frames])


FIELD = {  # the fixed fields' struct codes, after magic and version
    "B": st.integers(0, 255),
    "i": st.integers(-(2**31), 2**31 - 1),
    "q": st.integers(-(2**63), 2**63 - 1),
    "d": st.floats(allow_nan=True, allow_infinity=True),
    "H": st.integers(0, 2**16 - 1),
    "I": st.integers(0, 2**32 - 1),
}


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(*(FIELD[c] for c in HEAD.format.removeprefix("<4sB"))),
    st.binary(max_size=96),
    st.lists(st.binary(max_size=64), max_size=3),
)
def test_fuzz_structured_headers(fields, variable, body):
    fixed = struct.pack(HEAD.format, MAGIC, VERSION, *fields)
    decodes_or_wire_error([fixed + variable, *body])
