"""Profile: per-layer time on one or more devices, and per-layer memory, for one batch size.

JSON form (docs/formats.md)::

    {"model": "vgg19", "batch_size": 128,
     "layers": [{"name": "conv1", "output_bytes": 33555000, "param_bytes": 10298,
                 "ms": {"VM": {"fwd": 8.31, "bwd": 15.45, "opt": 0.0}}}, ...]}

A device missing from a layer's ``ms`` means "not measured" (never "free").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mpsl.errors import FormatError
from mpsl.fileformat import load_model, save_model


class Timing(BaseModel):
    """Milliseconds for one batch: forward, backward, optimizer step."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fwd: float = Field(ge=0)
    bwd: float = Field(ge=0)
    opt: float = Field(default=0.0, ge=0)


class LayerProfile(BaseModel):
    """One indivisible layer: memory facts and per-device timings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    output_bytes: int = Field(ge=0, description="output activation of one batch")
    param_bytes: int = Field(ge=0)
    grad_bytes: int | None = Field(default=None, ge=0, description="default: param_bytes")
    optimizer_bytes: int | None = Field(default=None, ge=0, description="absent: not measured")
    peak_bytes: int | None = Field(default=None, ge=0, description="measured peak of training it")
    buffer_bytes: int | None = Field(default=None, ge=0, description="buffers; default: 0")
    saved_bytes: int | None = Field(
        default=None, ge=0, description="what autograd keeps for backward of one batch"
    )
    saves_input: bool | None = Field(default=None, description="saved_bytes include the input")
    saves_output: bool | None = Field(default=None, description="saved_bytes include the output")
    ms: dict[str, Timing] = Field(default_factory=dict)

    @property
    def train_state_bytes(self) -> int:
        """Weights + gradients + optimizer state of one instance of this layer."""
        return (
            self.param_bytes + (self.grad_bytes or self.param_bytes) + (self.optimizer_bytes or 0)
        )


class Profile(BaseModel):
    """Per-layer profile of one model at one batch size, possibly on several devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    batch_size: int = Field(gt=0)
    input_shape: list[int] | None = None
    input_bytes: int | None = Field(default=None, ge=0, description="one input batch")
    source: str | None = None
    task_overhead_ms: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        default=None, description="device -> ms the runtime adds to every task on it"
    )
    layers: list[LayerProfile] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_unique(self) -> Profile:
        seen: set[str] = set()
        for i, layer in enumerate(self.layers, 1):
            if layer.name in seen:
                raise ValueError(f"layer {i} repeats the name '{layer.name}'")
            seen.add(layer.name)
        return self

    @property
    def num_layers(self) -> int:
        """Number of indivisible layers S."""
        return len(self.layers)

    def devices(self) -> list[str]:
        """Devices with a timing for at least one layer, in first-seen order."""
        names: dict[str, None] = {}
        for layer in self.layers:
            names.update(dict.fromkeys(layer.ms))
        return list(names)

    def require_devices(self, wanted: Sequence[tuple[str, str]], source: str = "cluster") -> None:
        """Raise FormatError naming each (where, device) of ``wanted`` this profile lacks."""
        known = set(self.devices())
        missing = [f"{where}.device '{dev}'" for where, dev in wanted if dev not in known]
        if missing:
            raise FormatError(
                f"{source}: {'; '.join(missing)} not in the profile of {self.model} "
                f"(devices there: {', '.join(sorted(known))})"
            )

    def timing(self, device: str, layer: int) -> Timing:
        """Timing of 1-based ``layer`` on ``device``; FormatError if it was not measured."""
        lp = self.layers[layer - 1]
        if device not in lp.ms:
            known = ", ".join(self.devices()) or "none"
            raise FormatError(
                f"profile of {self.model} has no timing for layer {layer} ({lp.name}) on device "
                f"'{device}'; devices in this profile: {known}; profile it, or estimate it with "
                "--impute ratio (docs/profile.md)"
            )
        return lp.ms[device]

    def task_overhead(self, device: str) -> float:
        """Milliseconds the runtime adds to every task on ``device`` (0 when not measured)."""
        return (self.task_overhead_ms or {}).get(device, 0.0)

    def merged(self, other: Profile) -> Profile:
        """This profile with the device timings of ``other`` (same model and layers) added."""
        if other.model != self.model or other.num_layers != self.num_layers:
            raise FormatError(
                f"cannot merge a profile of {other.model} ({other.num_layers} layers) into "
                f"{self.model} ({self.num_layers} layers)"
            )
        layers = [
            a.model_copy(update={"ms": {**a.ms, **b.ms}})
            for a, b in zip(self.layers, other.layers, strict=True)
        ]
        overhead = {**(self.task_overhead_ms or {}), **(other.task_overhead_ms or {})}
        return self.model_copy(update={"layers": layers, "task_overhead_ms": overhead or None})

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        """Read and validate a profile file."""
        return load_model(cls, path)

    def save(self, path: str | Path) -> None:
        """Write this profile as JSON."""
        save_model(self, path)
