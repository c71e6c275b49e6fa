"""Where a compute node computes: the CPU, or a CUDA device whose memory is the scarce one.

Data owners always compute on the CPU. A compute node on a GPU receives and sends CPU tensors (the
transport's): they cross to the device when its task starts and back before the task's result is
sent, so no other role, and no message, ever holds device memory.
"""

from __future__ import annotations

import re

import torch

from mpsl.errors import ConfigError

DEVICE_SPEC = re.compile(r"cpu|cuda(:\d+)?")
CPU = torch.device("cpu")


def check_device_spec(spec: str) -> str:
    """``spec`` if it names a device MP-SL places parts on (cpu, cuda, cuda:N), else ValueError."""
    if not DEVICE_SPEC.fullmatch(spec):
        raise ValueError(f"'{spec}' is not a device: expected cpu, cuda or cuda:N (N = 0, 1, ...)")
    return spec


def resolve_device(spec: str, field: str) -> torch.device:
    """The torch device ``spec`` names, present on this machine; a ConfigError naming ``field``
    otherwise (a run asked for a GPU fails before it trains, not at its first task)."""
    device = torch.device(check_device_spec(spec))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"'{spec}': this machine has no CUDA device torch can use (torch "
                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); use cpu, or "
                "run this compute node on a machine with a GPU",
                field=field,
            )
        count = torch.cuda.device_count()
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= count:
            raise ConfigError(
                f"'{spec}': this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}",
                field=field,
            )
        device = torch.device("cuda", index)
    return device


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device`` (itself when it is there already)."""
    return tensor.to(device, non_blocking=True) if tensor.device != device else tensor


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in host memory, complete (the copy has finished), ready to send."""
    return tensor.to(CPU) if tensor.device != CPU else tensor
