"""Measuring a model layer by layer on this machine's CPU: times, bytes and peak memory.

Layer i is measured on a real input: the output of layers 1..i-1 on a random batch. One training
iteration of a layer is: forward, backward with a random upstream gradient (including the gradient
of the layer's input, which a compute node must send back; not for layer 1, whose input is data),
and an optimizer step of the layer's own parameters (the runtime's SGD, momentum 0.9 by default).
Each phase is timed with ``time.perf_counter_ns`` after warm-up iterations, and the times of the
repeats are reduced to a trimmed mean. The C allocator is set up as the runtime sets it
(``keep_freed_memory``): with glibc's defaults every large output or gradient is a fresh mmap and
pays its page faults, which the runtime never does (one-off check, LeNet-5's first convolution at
batch 64, 9 profiles each way: backward 0.27-1.55 ms with the defaults, 0.31-0.58 ms kept).

Memory:
- ``output_bytes``: the layer's output tensor for one batch.
- ``param_bytes``: the layer's parameters (buffers such as BatchNorm running statistics excluded).
- ``grad_bytes``: gradients of the trainable parameters.
- ``optimizer_bytes``: the optimizer's state tensors after a step (SGD with momentum: one momentum
  buffer per parameter, i.e. 1x the trainable parameters; plain SGD: 0).
- ``peak_bytes``: bytes resident before one iteration (input, upstream gradient, parameters,
  optimizer state; gradients are freed between iterations, as ``zero_grad()`` does) plus the highest
  net amount allocated during the iteration, as reported by the CPU allocator to
  ``torch.profiler`` (``profile_memory=True``). It covers tensors allocated by torch on the CPU,
  not Python objects or allocator caching.
- ``buffer_bytes``: the layer's buffers (BatchNorm running statistics), kept by every instance.
- ``saved_bytes``: what autograd keeps from one forward until its backward: the storages of the
  tensors it saves (``torch.autograd.graph.saved_tensors_hooks``), each storage once, parameters
  excluded; the same count the runtime makes of its roles (``mpsl.training.memory.saved_storages``).
  ``saves_input`` / ``saves_output`` say whether the layer's input / output are among them, so
  that a part of several layers counts a tensor kept on both sides of a cut inside it once.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

from mpsl.errors import ConfigError
from mpsl.models import MODELS, LayerChain, build_model
from mpsl.profile.format import LayerProfile, Profile, Timing
from mpsl.quiet import silenced
from mpsl.training.allocator import keep_freed_memory
from mpsl.training.memory import saved_storages
from mpsl.training.steps import make_optimizer

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class MeasureSettings:
    """How each layer is measured."""

    repeats: int = 10
    warmup: int = 2
    trim: float = 0.1  # fraction of the repeats dropped at each end before averaging
    lr: float = 1e-3
    momentum: float = 0.9
    seed: int = 0
    threads: int | None = None  # torch intra-op threads while measuring; None: leave as is

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ConfigError(f"need at least 1 repeat; got {self.repeats}", field="repeats")
        if self.warmup < 0:
            raise ConfigError(f"warm-up must be 0 or more; got {self.warmup}", field="warmup")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be positive; got {self.threads}", field="threads")
        if not 0 <= self.trim < 0.5:
            raise ConfigError(f"trim must lie in [0, 0.5); got {self.trim}", field="trim")


def default_device_name() -> str:
    """The hostname, or ``local`` when it has none."""
    return socket.gethostname() or "local"


def trimmed_mean(values: list[float], trim: float) -> float:
    """Mean of ``values`` without the lowest and highest ``trim`` fraction."""
    ordered = sorted(values)
    cut = int(len(ordered) * trim)
    kept = ordered[cut : len(ordered) - cut] or ordered
    return sum(kept) / len(kept)


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of ``t``'s elements."""
    return t.numel() * t.element_size()


class _LayerRun:
    """One layer, its input, its optimizer: runs timed and memory-profiled iterations."""

    def __init__(self, layer: nn.Module, x: torch.Tensor, is_data: bool, s: MeasureSettings):
        self.layer = layer
        self.params = [p for p in layer.parameters() if p.requires_grad]
        self.x = x.detach()
        if not is_data and self.x.is_floating_point():
            self.x.requires_grad_(True)
        self.opt = make_optimizer(self.params, "sgd", s.lr, s.momentum)
        with torch.no_grad():
            out = layer(self.x)
        self.upstream = torch.randn(out.shape, dtype=out.dtype)

    def iteration(self) -> tuple[float, float, float, torch.Tensor]:
        """One forward, backward and step; (fwd_ms, bwd_ms, opt_ms, output)."""
        if self.opt is not None:
            self.opt.zero_grad(set_to_none=True)
        self.x.grad = None
        t0 = time.perf_counter_ns()
        y = self.layer(self.x)
        t1 = time.perf_counter_ns()
        if y.requires_grad:
            y.backward(self.upstream)
        t2 = time.perf_counter_ns()
        if self.opt is None:  # nothing to update: no step, not the cost of timing nothing
            return (t1 - t0) / 1e6, (t2 - t1) / 1e6, 0.0, y.detach()
        self.opt.step()
        t3 = time.perf_counter_ns()
        return (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6, y.detach()

    def optimizer_bytes(self) -> int:
        if self.opt is None:
            return 0
        return sum(
            tensor_bytes(v)
            for state in self.opt.state.values()
            for v in state.values()
            if isinstance(v, torch.Tensor)
        )

    def saved(self) -> tuple[int, bool, bool]:
        """(bytes autograd keeps for backward, whether the input is kept, whether the output is)."""
        with saved_storages(self.layer.parameters()) as kept:
            y = self.layer(self.x)
        inp, out = self.x.untyped_storage().data_ptr(), y.untyped_storage().data_ptr()
        return sum(kept.values()), inp in kept, out in kept

    def peak_bytes(self) -> int:
        """Resident bytes plus the allocator's highest net allocation during one iteration."""
        if self.opt is not None:
            self.opt.zero_grad(set_to_none=True)
        self.x.grad = None
        resident = tensor_bytes(self.x) + tensor_bytes(self.upstream) + self.optimizer_bytes()
        resident += sum(tensor_bytes(p) for p in self.layer.parameters())
        with (
            silenced(2),
            torch_profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
        ):
            self.iteration()
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
        current = highest = 0
        for e in sorted(events, key=lambda e: e.start_ns()):
            current += e.nbytes()
            highest = max(highest, current)
        return resident + highest


def measure_layer(
    layer: nn.Module, name: str, x: torch.Tensor, is_data: bool, device: str, s: MeasureSettings
) -> tuple[LayerProfile, torch.Tensor]:
    """Measure one layer on input ``x``; returns its profile and its output (the next input)."""
    run = _LayerRun(layer, x, is_data, s)
    for _ in range(s.warmup):
        run.iteration()
    fwd, bwd, opt = [], [], []
    y = None
    for _ in range(s.repeats):
        f, b, o, y = run.iteration()
        fwd.append(f)
        bwd.append(b)
        opt.append(o)
    assert y is not None
    saved, saves_input, saves_output = run.saved()
    timing = Timing(
        fwd=trimmed_mean(fwd, s.trim), bwd=trimmed_mean(bwd, s.trim), opt=trimmed_mean(opt, s.trim)
    )
    lp = LayerProfile(
        name=name,
        output_bytes=tensor_bytes(y),
        param_bytes=sum(tensor_bytes(p) for p in layer.parameters()),
        grad_bytes=sum(tensor_bytes(p) for p in run.params),
        optimizer_bytes=run.optimizer_bytes(),
        peak_bytes=run.peak_bytes(),
        buffer_bytes=sum(tensor_bytes(b) for b in layer.buffers()),
        saved_bytes=saved,
        saves_input=saves_input,
        saves_output=saves_output,
        ms={device: timing},
    )
    log.debug("layer %s: %s", name, timing)
    return lp, y


def random_batch(
    chain: LayerChain, batch_size: int, vocab: int | None, generator: torch.Generator
) -> torch.Tensor:
    """A random input batch (token ids below ``vocab`` for integer inputs; zeros without one)."""
    shape = (batch_size, *chain.input_shape)
    if chain.input_dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=chain.input_dtype)
    if vocab is None:
        return torch.zeros(shape, dtype=chain.input_dtype)
    return torch.randint(0, vocab, shape, generator=generator, dtype=chain.input_dtype)


def measure_chain(
    chain: LayerChain,
    batch_size: int,
    *,
    device_name: str | None = None,
    settings: MeasureSettings | None = None,
    vocab: int | None = None,
    progress: Progress | None = None,
) -> Profile:
    """Profile every layer of ``chain`` at ``batch_size``; ``progress(i, S, name)`` after each."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be positive; got {batch_size}", field="batch_size")
    s = settings or MeasureSettings()
    device = device_name or default_device_name()
    keep_freed_memory()
    gen = torch.Generator().manual_seed(s.seed)
    chain.train()
    x = random_batch(chain, batch_size, vocab, gen)
    input_bytes = tensor_bytes(x)
    threads = torch.get_num_threads()
    if s.threads is not None:
        torch.set_num_threads(s.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.seed)  # the upstream gradients and dropout masks
            layers = []
            for i, (name, layer) in enumerate(chain.named_children(), 1):
                lp, x = measure_layer(layer, name, x, i == 1, device, s)
                layers.append(lp)
                if progress is not None:
                    progress(i, chain.num_layers, name)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    return Profile(
        model=chain.model_name,
        batch_size=batch_size,
        input_shape=list(chain.input_shape),
        input_bytes=input_bytes,
        source=(
            f"mpsl profile on {device}: CPU, torch {torch.__version__}, "
            f"{used} threads, {s.repeats} repeats after {s.warmup} warm-up, "
            f"{s.trim:.0%} trimmed mean; SGD momentum {s.momentum}"
        ),
        layers=layers,
    )


def measure_model(
    name: str,
    batch_size: int,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    device_name: str | None = None,
    settings: MeasureSettings | None = None,
    progress: Progress | None = None,
) -> Profile:
    """Build model ``name`` (zoo or FILE.py:FUNCTION) and profile it (see measure_chain)."""
    s = settings or MeasureSettings()
    chain = build_model(name, num_classes=num_classes, input_shape=input_shape, seed=s.seed)
    zoo = MODELS.get(name)  # a user model's token ids stay zeros without --num-classes
    vocab = num_classes if num_classes is not None else (zoo.num_classes if zoo else None)
    return measure_chain(
        chain, batch_size, device_name=device_name, settings=s, vocab=vocab, progress=progress
    )
