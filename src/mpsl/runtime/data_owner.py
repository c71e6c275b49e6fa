"""The data owner: holds its data, its labels, the first part and the last part.

Per batch: forward the first part and send the activation to the first compute node; on the last
compute node's activation, forward the last part, loss, backward, step, and send the gradient back;
on the gradient for the first part, backward and step. Raw inputs and labels never leave it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mpsl.data.base import Labeled
from mpsl.errors import RuntimeFailure
from mpsl.runtime.device import REAL, Device
from mpsl.runtime.events import EventLog
from mpsl.runtime.messages import Kind, Message, strip_prefix
from mpsl.runtime.transport import Transport
from mpsl.runtime.worker import Worker
from mpsl.tasks import AGGREGATOR, TaskKind, TaskRecord, owner_endpoint
from mpsl.training.defences import (
    NO_DEFENCES,
    Defences,
    clip_and_noise,
    distance_correlation,
    max_norm,
)
from mpsl.training.memory import SavedBytesMeter, state_bytes
from mpsl.training.steps import Workload, batch_plan, loss_fn, owner_seed


class DataOwner(Worker):
    """Trains its first and last part in a pipeline through the compute nodes."""

    def __init__(
        self,
        *,
        index: int,
        data: Labeled,
        first: nn.Module,
        last: nn.Module,
        first_node: str,
        last_node: str,
        transport: Transport,
        events: EventLog,
        make_optimizer: Callable[[nn.Module], torch.optim.Optimizer | None],
        workload: Workload,
        device: Device = REAL,
        aggregator: str = AGGREGATOR,
        emulated_output_bytes: tuple[int, int] = (0, 0),
        defences: Defences = NO_DEFENCES,
    ) -> None:
        self.index = index
        self.name = owner_endpoint(index)
        self.data = data
        self.first, self.last = first, last
        self.first_node, self.last_node = first_node, last_node
        self.transport, self.events = transport, events
        self.make_optimizer = make_optimizer
        self.workload = workload
        self.device = device
        self.aggregator = aggregator
        # (first part's output, last compute node's output): sizes sent when compute is off
        self.emulated_output_bytes = emulated_output_bytes
        self.defences = defences
        self._noise = torch.Generator()  # reseeded per round while a defence is on
        self.peak_memory_bytes = 0
        self._peak_saved = 0  # most activation bytes autograd held in one batch
        self._meters = (SavedBytesMeter(), SavedBytesMeter())  # first part, last part

    def _handle(self, msg: Message) -> None:
        if msg.kind is not Kind.ROUND_START:
            raise ValueError(f"unexpected {msg.kind.value} from {msg.sender} between rounds")
        self._round(msg)

    def _where(self, msg: Message) -> str:
        return f"data owner {self.index}, round {msg.round}"

    def _round(self, start: Message) -> None:
        r = start.round
        if start.tensors:
            self.first.load_state_dict(strip_prefix(start.tensors, "first."))
            self.last.load_state_dict(strip_prefix(start.tensors, "last."))
        opt_first, opt_last = self.make_optimizer(self.first), self.make_optimizer(self.last)
        w = self.workload
        batches = batch_plan(
            len(self.data),
            w.batch_size,
            w.batches_per_epoch,
            w.local_epochs,
            owner_seed(w.seed, self.index, r),
        )
        # The defences' own random stream: drawing from torch's global one would change the
        # weights of later runs in the process (and break equality with defences off).
        self._noise.manual_seed(owner_seed(w.seed, self.index, r) + _NOISE_STREAM)
        loss_sum, samples = 0.0, 0
        for b, idx in enumerate(batches):
            loss = self._batch(r, b, idx, opt_first, opt_last)
            loss_sum += loss * len(idx)
            samples += len(idx)
        state = {f"first.{k}": v.detach().clone() for k, v in self.first.state_dict().items()}
        state |= {f"last.{k}": v.detach().clone() for k, v in self.last.state_dict().items()}
        self.transport.send(
            self.aggregator,
            Message(Kind.WEIGHTS, self.name, self.index, round=r, tensors=state, samples=samples),
        )
        self.transport.send(
            self.coordinator,
            Message(
                Kind.ROUND_DONE, self.name, self.index, round=r, samples=samples, value=loss_sum
            ),
        )
        held = state_bytes(self.first, opt_first) + state_bytes(self.last, opt_last)
        self.peak_memory_bytes = max(self.peak_memory_bytes, held + self._peak_saved)

    def _batch(
        self,
        r: int,
        b: int,
        idx: torch.Tensor,
        opt_first: torch.optim.Optimizer | None,
        opt_last: torch.optim.Optimizer | None,
    ) -> float:
        x, y = self.data.x[idx], self.data.y[idx]
        saved = [0]
        t0 = self.events.now()

        d = self.defences
        raw: list[torch.Tensor] = []  # the first part's output before clipping and noise

        def first_fwd() -> torch.Tensor:
            out, saved[0] = self._meters[0].run(lambda: self.first(x), self.first, x)
            raw.append(out)
            if d.activation_clip is not None:
                out = clip_and_noise(out, d.activation_clip, d.activation_noise, self._noise)
            return out

        act = self.device.run(TaskKind.FIRST_FWD, first_fwd)
        self._send(Kind.ACTIVATION, self.first_node, r, b, act, self.emulated_output_bytes[0])
        self._record(r, b, TaskKind.FIRST_FWD, t0, act)

        back = self._expect(Kind.ACTIVATION, r, b)
        t1 = self.events.now()

        def last_step() -> tuple[torch.Tensor | None, float]:
            assert back.tensor is not None
            z = back.tensor.detach().requires_grad_(True)
            loss, last_saved = self._meters[1].run(lambda: loss_fn(self.last(z), y), self.last, z)
            if not torch.isfinite(loss):
                raise RuntimeFailure(
                    f"{self.name} (data owner {self.index}), round {r}, batch {b}: the training "
                    f"loss is {float(loss.detach())}, not a finite number: training diverged; "
                    "lower the learning rate (lr, --lr), and check the data for NaN or infinite "
                    "values"
                )
            saved[0] += last_saved
            loss.backward()
            _step(opt_last)
            return self._defend_gradient(z.grad), float(loss.detach())

        result = self.device.run(TaskKind.LAST, last_step)
        grad, loss = result if result is not None else (None, 0.0)
        self._send(Kind.GRADIENT, self.last_node, r, b, grad, self.emulated_output_bytes[1])
        self._record(r, b, TaskKind.LAST, t1, grad)
        self._peak_saved = max(self._peak_saved, saved[0])

        grad_in = self._expect(Kind.GRADIENT, r, b)
        t2 = self.events.now()

        def first_bwd() -> None:
            assert act is not None and grad_in.tensor is not None
            if d.nopeek > 0 and raw[0].requires_grad:
                # NoPeek's term is the data owner's own loss: its gradient joins node1's.
                term = d.nopeek * distance_correlation(x, raw[0])
                torch.autograd.backward((act, term), (grad_in.tensor, torch.ones_like(term)))
            elif act.requires_grad:  # a first part without weights has nothing to train
                act.backward(grad_in.tensor)
            _step(opt_first)

        self.device.run(TaskKind.FIRST_BWD, first_bwd if act is not None else _nothing)
        self._record(r, b, TaskKind.FIRST_BWD, t2, None)
        return loss

    def _defend_gradient(self, grad: torch.Tensor | None) -> torch.Tensor | None:
        """The gradient for the last compute node, after max-norm, then clipping and noise."""
        d = self.defences
        if grad is None:
            return None
        if d.label_defence == "max-norm":
            grad = max_norm(grad, self._noise)
        if d.gradient_clip is not None:
            grad = clip_and_noise(grad, d.gradient_clip, d.gradient_noise, self._noise)
        return grad

    def _send(
        self, kind: Kind, dest: str, r: int, b: int, t: torch.Tensor | None, size_if_emulated: int
    ) -> None:
        tensor = t.detach() if t is not None else None
        self.transport.send(
            dest,
            Message(
                kind,
                self.name,
                self.index,
                b,
                r,
                tensor=tensor,
                virtual_bytes=0 if t is not None else size_if_emulated,
            ),
        )

    def _expect(self, kind: Kind, r: int, b: int) -> Message:
        msg = self._await()
        if msg.kind is not kind or msg.batch != b or msg.round != r:
            raise ValueError(
                f"expected {kind.value} for round {r} batch {b}; got "
                f"{msg.kind.value} for round {msg.round} batch {msg.batch} "
                f"from {msg.sender}"
            )
        return msg

    def _record(
        self, r: int, b: int, kind: TaskKind, start: float, sent: torch.Tensor | None
    ) -> None:
        nbytes = sent.nbytes if sent is not None else 0
        self.events.add(
            TaskRecord(self.name, self.index, b, r, kind, start, self.events.now(), nbytes)
        )


# Offset of the defences' seeds from the data order's, so the two streams differ.
_NOISE_STREAM = 7_919


def _step(opt: torch.optim.Optimizer | None) -> None:
    if opt is not None:
        opt.step()
        opt.zero_grad(set_to_none=True)


def _nothing() -> None:
    return None
