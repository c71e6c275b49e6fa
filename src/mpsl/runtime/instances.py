"""A compute node's per-data-owner instances of its part, within a memory budget.

Without a budget every data owner's instance has a resident copy of the part of its own (K slots).
With one, the node keeps as many slots as the budget allows; an instance that trained this round
and lost its slot waits in a backing store (weights and optimizer state) and is read back when its
data owner's next task comes. On the CPU, where host memory is what the budget bounds, the backing
store is a safetensors file per instance in a private temporary directory; on a GPU, whose memory
is the scarce one, it is pinned host memory, copied on a stream of its own so that a prefetch
overlaps the computing task. An instance that has not trained this round is the global part with
a fresh optimizer: it needs no backing, only a copy.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from mpsl.errors import ConfigError
from mpsl.training.memory import SavedBytesMeter, state_bytes
from mpsl.training.steps import OptimizerFactory


@dataclass
class Slot:
    """A resident copy of the part and the optimizer of the instance it holds."""

    module: nn.Module
    optimizer: torch.optim.Optimizer | None = None
    owner: int | None = None
    loading: Future[None] | None = None  # a prefetch filling it in the background
    used: torch.cuda.Event | None = None  # on a GPU: its instance's last task, enqueued


@dataclass
class Instance:
    """One data owner's training this round: where its state is and the samples it trained on."""

    owner: int
    samples: int = 0
    slot: Slot | None = None
    on_disk: bool = False  # in the backing store; False and no slot: the global part, fresh
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)  # non-tensor optimizer state
    meter: SavedBytesMeter = field(default_factory=SavedBytesMeter)


class DiskState(Mapping[str, torch.Tensor]):
    """A swapped-out instance's weights, read one tensor at a time (FedAvg holds no whole copy)."""

    def __init__(self, path: Path, keys: Sequence[str]) -> None:
        self._path = path
        self._keys = list(keys)

    def __getitem__(self, key: str) -> torch.Tensor:
        with SafetensorsReader(self._path) as f:
            return f.read("m." + key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class Reader(Protocol):
    """One backed-up instance's tensors, by name."""

    def names(self) -> list[str]:
        """The tensors' names."""
        ...

    def fits(self, key: str, out: object) -> bool:
        """Whether tensor ``key`` can be read into ``out``."""
        ...

    def read(self, key: str) -> torch.Tensor:
        """Tensor ``key`` in a new buffer, where the slots keep it."""
        ...

    def read_into(self, key: str, out: torch.Tensor) -> None:
        """Tensor ``key`` straight into ``out``."""
        ...


class Backing(Protocol):
    """Where instances without a slot wait: written whole, read back one tensor at a time."""

    def write(self, owner: int, tensors: Mapping[str, torch.Tensor]) -> None:
        """Keep ``tensors`` as ``owner``'s instance, replacing what was kept."""
        ...

    def reader(self, owner: int) -> contextlib.AbstractContextManager[Reader]:
        """``owner``'s kept tensors, open for reading."""
        ...

    def weights(self, owner: int, keys: Sequence[str]) -> Mapping[str, torch.Tensor]:
        """``owner``'s weights ("m." + key) for FedAvg, without a whole copy in memory."""
        ...

    def close(self) -> None:
        """Free what is kept."""
        ...


class DiskBacking:
    """Safetensors files in a private temporary directory (a CPU node: host memory is bounded)."""

    def __init__(self) -> None:
        self.dir: Path | None = None

    def write(self, owner: int, tensors: Mapping[str, torch.Tensor]) -> None:
        """``tensors`` into ``owner``'s file, over its old contents."""
        write_safetensors(self._path(owner), tensors)

    def reader(self, owner: int) -> SafetensorsReader:
        """``owner``'s file, open."""
        return SafetensorsReader(self._path(owner))

    def weights(self, owner: int, keys: Sequence[str]) -> Mapping[str, torch.Tensor]:
        """``owner``'s weights, read from its file one tensor at a time."""
        return DiskState(self._path(owner), keys)

    def close(self) -> None:
        """Remove the directory and its files."""
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _path(self, owner: int) -> Path:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="mpsl-instances-"))
        return self.dir / f"{owner}.safetensors"


class HostBacking:
    """Pinned host memory, a buffer per tensor kept across rounds (a GPU node: device memory is
    bounded, host memory is not). Copies run on the caller's current stream, asynchronously;
    the store synchronizes its copy stream before anyone reads what they wrote."""

    def __init__(self) -> None:
        self.pin = torch.cuda.is_available()  # page-locked: copies to the GPU run asynchronously
        self.kept: dict[int, dict[str, torch.Tensor]] = {}
        self.origin: dict[str, torch.device] = {}  # where each tensor lives in a slot

    def write(self, owner: int, tensors: Mapping[str, torch.Tensor]) -> None:
        """``tensors`` into ``owner``'s host buffers (made, pinned, on first use)."""
        mine = self.kept.setdefault(owner, {})
        for name, t in tensors.items():
            buf = mine.get(name)
            if buf is None or buf.shape != t.shape or buf.dtype != t.dtype:
                buf = mine[name] = torch.empty(t.shape, dtype=t.dtype, pin_memory=self.pin)
            buf.copy_(t, non_blocking=True)
            self.origin[name] = t.device  # Adam's step counter stays on the host, for one
        for name in set(mine) - set(tensors):
            del mine[name]

    @contextlib.contextmanager
    def reader(self, owner: int) -> Iterator[HostReader]:
        """``owner``'s buffers."""
        yield HostReader(self.kept[owner], self.origin)

    def weights(self, owner: int, keys: Sequence[str]) -> Mapping[str, torch.Tensor]:
        """``owner``'s weights, its host buffers themselves."""
        return {k: self.kept[owner]["m." + k] for k in keys}

    def close(self) -> None:
        """Drop the buffers."""
        self.kept.clear()


class HostReader:
    """One instance's pinned host buffers, read back where they came from."""

    def __init__(
        self, tensors: Mapping[str, torch.Tensor], origin: Mapping[str, torch.device]
    ) -> None:
        self._tensors, self._origin = tensors, origin

    def names(self) -> list[str]:
        """The tensors' names."""
        return list(self._tensors)

    def fits(self, key: str, out: object) -> bool:
        """Whether tensor ``key`` can be copied into ``out`` (a tensor of its kind)."""
        src = self._tensors[key]
        return isinstance(out, torch.Tensor) and out.shape == src.shape and out.dtype == src.dtype

    def read(self, key: str) -> torch.Tensor:
        """Tensor ``key`` in a new buffer where it was written from."""
        return self._tensors[key].to(self._origin[key], non_blocking=True)

    def read_into(self, key: str, out: torch.Tensor) -> None:
        """Tensor ``key`` into ``out``."""
        out.copy_(self._tensors[key], non_blocking=True)


class InstanceStore:
    """The instances of one compute node, at most a byte budget of them resident."""

    def __init__(
        self,
        global_part: nn.Module,
        owners: Sequence[int],
        make_optimizer: OptimizerFactory,
        budget: int | None = None,
        device: torch.device | None = None,
    ) -> None:
        if budget is not None and budget <= 0:
            raise ConfigError(f"must be positive, got {budget}", field="node_memory_budget")
        self.device = device or torch.device("cpu")
        self.gpu = self.device.type == "cuda"
        self.global_part = global_part  # on the host, where the coordinator's weights arrive
        self.make_optimizer = make_optimizer
        self.budget = budget
        self.instances = {k: Instance(k) for k in owners}
        self.slots: list[Slot] = []
        self.grad_bytes = sum(p.nbytes for p in global_part.parameters())  # one backward's
        # One backward's gradient in and the gradient of its input out, the most seen: neither is
        # a saved activation, and on a GPU they are what a budget of saved bytes alone overran.
        self.boundary_bytes = 0
        self.instance_bytes = _instance_bytes(global_part, make_optimizer)
        self.batch_bytes = 0  # the most activation bytes one forward saved so far
        self.swaps_in = 0
        self.prefetched = 0  # of swaps_in: started by the prefetch, off the task's path
        self.writes = 0
        self.backing: Backing = HostBacking() if self.gpu else DiskBacking()
        self._io: ThreadPoolExecutor | None = None
        self._stream = torch.cuda.Stream(self.device) if self.gpu else None  # swap copies
        if budget is None:  # every instance resident, allocated now rather than in round one
            for inst in self.instances.values():
                self._bind(self._new_slot(), inst)
                self._reset(inst.slot)  # type: ignore[arg-type]

    # --- the round ---

    def start_round(self) -> None:
        """Every instance becomes the global part with a fresh optimizer; no file survives."""
        self._settle()
        for inst in self.instances.values():
            inst.samples, inst.on_disk, inst.extra = 0, False, {}
            if inst.slot is not None:
                self._reset(inst.slot)

    def states(self, owners: Sequence[int]) -> list[Mapping[str, torch.Tensor]]:
        """The weights of ``owners``' instances, resident or read from their files on demand."""
        self._settle()
        keys = list(self.global_part.state_dict())
        out: list[Mapping[str, torch.Tensor]] = []
        for k in owners:
            inst = self.instances[k]
            if inst.slot is not None:
                out.append(inst.slot.module.state_dict())
            elif inst.on_disk:
                out.append(self.backing.weights(k, keys))
            else:
                out.append(self.global_part.state_dict())
        return out

    # --- admission and residence ---

    def can_admit(self, owner: int, live_bytes: int, pinned: Collection[int]) -> bool:
        """Whether a forward of ``owner`` fits now, with ``live_bytes`` of activations saved and
        the instances of ``pinned`` (a batch in flight) unmovable; a lone batch always fits."""
        if self.budget is None or not pinned:
            return True
        slots = len(self.slots)
        resident = self.instances[owner].slot is not None
        if not resident and self._victim(pinned, set()) is None:
            slots += 1  # it would need a slot of its own
        # One slot more than the batches in flight: a spare one the prefetch can always load the
        # next instance into while this batch computes (docs/memory.md, "the prefetch").
        slots = max(slots, len(set(pinned) | {owner}) + 1)
        held = slots * self.instance_bytes + self.backward_bytes + live_bytes + self.batch_bytes
        return held <= self.budget

    def acquire(self, owner: int, pinned: Collection[int]) -> Slot:
        """``owner``'s instance, resident (read back or copied in if it was not)."""
        inst = self.instances[owner]
        if inst.slot is None:
            slot = self._take(pinned, {owner})
            self._fill(slot, inst)
        assert inst.slot is not None
        if inst.slot.loading is not None:
            inst.slot.loading.result()
            inst.slot.loading = None
        return inst.slot

    def prefetch(self, owner: int, pinned: Collection[int], busy: int) -> None:
        """Start bringing ``owner``'s instance in on the I/O thread, if a slot is free for it."""
        inst = self.instances[owner]
        if self.budget is None or inst.slot is not None:
            return
        keep = set(pinned) | {busy}
        if self._victim(keep, set()) is None and not self._room_for_slot(keep):
            return
        slot = self._take(keep, {owner})
        if self._io is None:
            self._io = ThreadPoolExecutor(1, thread_name_prefix="mpsl-swap")
        self._fill(slot, inst, background=True)

    def close(self) -> None:
        """Wait for the I/O thread and free the backing store (its files go)."""
        self._settle()
        if self._io is not None:
            self._io.shutdown()
            self._io = None
        self.backing.close()

    @property
    def backward_bytes(self) -> int:
        """What one backward holds besides the saved activations: the weights' gradients, the
        gradient it receives and the one it sends."""
        return self.grad_bytes + self.boundary_bytes

    def held(self, live_bytes: int) -> int:
        """What the budget counts now: resident instances, one backward's gradients, activations."""
        return len(self.slots) * self.instance_bytes + self.backward_bytes + live_bytes

    def used(self, slot: Slot) -> None:
        """A task of ``slot``'s instance is enqueued: a swap of it must wait for that, no more."""
        if self.gpu:
            slot.used = torch.cuda.Event()
            slot.used.record(torch.cuda.current_stream(self.device))

    def state_bytes(self) -> int:
        """Tensor bytes of the resident slots: weights, buffers, gradients, optimizer state."""
        return sum(state_bytes(s.module, s.optimizer) for s in self.slots)

    # --- inside ---

    def _room_for_slot(self, pinned: Collection[int]) -> bool:
        if self.budget is None:
            return True
        if self.slots and not self.batch_bytes:
            return False  # a batch's activations are not measured yet: the floor until they are
        need = (len(self.slots) + 1) * self.instance_bytes + self.backward_bytes
        return need + (len(pinned) + 1) * self.batch_bytes <= self.budget

    def _victim(self, keep: Collection[int], extra: set[int]) -> Slot | None:
        """A slot whose instance may leave: no batch in flight, not in use, not loading."""
        for slot in self.slots:
            free = slot.owner is None or (slot.owner not in keep and slot.owner not in extra)
            if free and (slot.loading is None or slot.loading.done()):
                return slot
        return None

    def _take(self, keep: Collection[int], extra: set[int]) -> Slot:
        """A slot for another instance: a new one while the budget allows, else a victim's."""
        self._settle()
        victim = self._victim(keep, extra)
        if victim is None or (self._room_for_slot(keep) and len(self.slots) < len(self.instances)):
            return self._new_slot()
        return victim

    def _new_slot(self) -> Slot:
        slot = Slot(copy.deepcopy(self.global_part).to(self.device))
        self.slots.append(slot)
        return slot

    def _bind(self, slot: Slot, inst: Instance) -> None:
        if slot.owner is not None:
            self.instances[slot.owner].slot = None
        slot.owner, inst.slot = inst.owner, slot

    def _fill(self, slot: Slot, inst: Instance, background: bool = False) -> None:
        """Move the slot's instance out (to its file if it trained) and ``inst`` in."""
        leaving = self.instances[slot.owner] if slot.owner is not None else None
        write = leaving is not None and leaving.samples > 0
        if write:
            assert leaving is not None
            leaving.on_disk = True
        self._bind(slot, inst)
        self.swaps_in += 1
        self.writes += write
        optimizer = self.make_optimizer(slot.module)
        args = (slot, leaving if write else None, inst, optimizer)
        if background:
            assert self._io is not None
            self.prefetched += 1
            slot.loading = self._io.submit(self._move, *args)
        else:
            self._move(*args)

    def _move(
        self,
        slot: Slot,
        leaving: Instance | None,
        arriving: Instance,
        optimizer: torch.optim.Optimizer | None,
    ) -> None:
        """The I/O of a swap: write the leaving instance, read or copy the arriving one."""
        with self._copying(slot):
            if leaving is not None:
                self._write(slot, leaving)
            self._read(slot, arriving, optimizer)
        slot.optimizer = optimizer

    @contextlib.contextmanager
    def _copying(self, slot: Slot) -> Iterator[None]:
        """On a GPU: the swap's copies on the copy stream, after the slot's last task and before
        the swap counts as done (its task, on the compute stream, reads the slot after that)."""
        if self._stream is None:
            yield
            return
        if slot.used is not None:
            self._stream.wait_event(slot.used)
        with torch.cuda.stream(self._stream):
            yield
        self._stream.synchronize()

    def _read(
        self, slot: Slot, arriving: Instance, optimizer: torch.optim.Optimizer | None
    ) -> None:
        """``arriving``'s weights and optimizer state into ``slot`` (from the backing, or the
        global part's weights if it has not trained this round)."""
        with torch.no_grad():
            if arriving.on_disk:
                # The slot's old optimizer state is written out (or not needed): its buffers take
                # the arriving state, straight from the file like the weights.
                old = slot.optimizer.state if slot.optimizer is not None else {}
                params = list(slot.module.parameters())
                states: dict[int, dict[str, Any]] = {}
                with self.backing.reader(arriving.owner) as f:
                    for key, t in slot.module.state_dict().items():
                        f.read_into("m." + key, t)  # straight into the slot: no second copy
                    for name in f.names():
                        if not name.startswith("o."):
                            continue
                        i_, key = name[2:].split(".", 1)
                        i = int(i_)
                        buf = old.get(params[i], {}).get(key)
                        if f.fits(name, buf):
                            f.read_into(name, buf)
                        else:
                            buf = f.read(name)
                        states.setdefault(i, {})[key] = buf
                if optimizer is not None:
                    for i, p in enumerate(params):
                        st = states.get(i, {}) | arriving.extra.get(i, {})
                        if st:
                            optimizer.state[p] = st
            else:
                self._copy_global(slot)

    def _write(self, slot: Slot, inst: Instance) -> None:
        """The slot's weights and optimizer state into the instance's backing."""
        tensors = {"m." + k: v.contiguous() for k, v in slot.module.state_dict().items()}
        inst.extra = {}
        if slot.optimizer is not None:
            for i, p in enumerate(slot.module.parameters()):
                for key, value in slot.optimizer.state.get(p, {}).items():
                    if isinstance(value, torch.Tensor):
                        tensors[f"o.{i}.{key}"] = value.contiguous()
                    else:  # a plain number or None: too small for the file
                        inst.extra.setdefault(i, {})[key] = value
        self.backing.write(inst.owner, tensors)

    def _reset(self, slot: Slot) -> None:
        self._copy_global(slot)
        slot.optimizer = self.make_optimizer(slot.module)

    def _copy_global(self, slot: Slot) -> None:
        """The global part's weights and buffers into ``slot``'s (host to device on a GPU)."""
        with torch.no_grad():
            for mine, new in zip(
                slot.module.state_dict().values(),
                self.global_part.state_dict().values(),
                strict=True,
            ):
                mine.copy_(new)

    def _settle(self) -> None:
        """Wait for a prefetch in progress: the bookkeeping that follows may touch its slot."""
        for slot in self.slots:
            if slot.loading is not None:
                slot.loading.result()
                slot.loading = None


_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


class SafetensorsReader:
    """Reads a safetensors file with plain reads, not mmap: the file's pages never count in the
    process's resident memory (safe_open maps them, and FedAvg over K files would touch all)."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 (closed by __exit__)
        (size,) = struct.unpack("<Q", self._f.read(8))
        self._header = json.loads(self._f.read(size))
        self._header.pop("__metadata__", None)
        self._base = 8 + size

    def __enter__(self) -> SafetensorsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def names(self) -> list[str]:
        """The tensors' names."""
        return list(self._header)

    def fits(self, key: str, out: object) -> bool:
        """Whether tensor ``key`` can be read into ``out`` (a contiguous tensor of its kind)."""
        meta = self._header[key]
        return (
            isinstance(out, torch.Tensor)
            and out.is_contiguous()
            and out.dtype == _DTYPES[meta["dtype"]]
            and list(out.shape) == meta["shape"]
        )

    def read(self, key: str) -> torch.Tensor:
        """Tensor ``key``, in a new buffer."""
        meta = self._header[key]
        out = torch.empty(meta["shape"], dtype=_DTYPES[meta["dtype"]])
        self.read_into(key, out)
        return out

    def read_into(self, key: str, out: torch.Tensor) -> None:
        """Tensor ``key`` straight into ``out`` (contiguous, of its shape and dtype)."""
        meta = self._header[key]
        start, end = meta["data_offsets"]
        target = out.detach().reshape(-1).view(torch.uint8).numpy()
        if end - start != target.nbytes or not out.is_contiguous():
            raise ValueError(f"{key}: {end - start} bytes on disk for a tensor of {target.nbytes}")
        self._f.seek(self._base + start)
        self._f.readinto(target.data)


_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """``tensors`` (contiguous) into a safetensors file, written from their own memory and over
    the file's old contents in place: no serialized copy, no page cache freed and allocated again
    (an instance's file has the same layout every time). Only this node's single I/O thread, or
    its task thread with that thread idle, writes or reads these files, so none sees half a one."""
    header: dict[str, Any] = {}
    offset = 0
    for name, t in tensors.items():
        header[name] = {
            "dtype": _NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        pos = _pwrite_all(fd, struct.pack("<Q", len(head)) + head, 0)
        for t in tensors.values():
            pos = _pwrite_all(fd, t.detach().reshape(-1).view(torch.uint8).numpy().data, pos)
        os.ftruncate(fd, pos)
    finally:
        os.close(fd)


def _pwrite_all(fd: int, data: bytes | memoryview, pos: int) -> int:
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n
    return pos


def _instance_bytes(part: nn.Module, make_optimizer: OptimizerFactory) -> int:
    """Weights, buffers and optimizer state of one instance, measured on a probe after a step."""
    probe = copy.deepcopy(part)
    optimizer = make_optimizer(probe)
    if optimizer is not None:
        for p in probe.parameters():
            p.grad = torch.zeros_like(p)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return state_bytes(probe, optimizer)
