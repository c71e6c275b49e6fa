"""RunConfig: everything one training run needs, from flags or a TOML file, validated on load."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mpsl.fileformat import parse_model, read_data

RESERVED = re.compile(r"^(owner\d+|aggregator|coordinator)$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_node_names(nodes: list[str], owners: int) -> None:
    """Raise ValueError unless ``nodes`` are distinct names no other role of the run uses."""
    for name in nodes:
        if not NAME.match(name) or RESERVED.match(name):
            raise ValueError(
                f"compute node name '{name}' must be letters, digits, '.', '_' or '-' and not "
                f"owner<k>, aggregator or coordinator"
            )
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"a compute node hosts one part only; got {nodes}")


class RunConfig(BaseModel):
    """One MP-SL training run. TOML keys are these field names (docs/formats.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "digits_cnn"
    dataset: Literal["digits", "mnist", "cifar10", "synthetic"] = "digits"
    data_path: str | None = Field(default=None, description="directory of mnist/cifar10 files")
    input_shape: list[int] | None = None
    num_classes: int | None = Field(default=None, gt=0)
    data_owners: int = Field(default=4, ge=1)
    partition: Literal["iid", "dirichlet"] = "iid"
    alpha: float = Field(default=0.5, gt=0, description="Dirichlet concentration (label skew)")
    cuts: list[int] | None = None
    compute_nodes: int | None = Field(default=None, ge=1, description="hops; used without cuts")
    nodes: list[str] | None = Field(
        default=None, description="name of the compute node hosting each middle part (placement)"
    )
    rounds: int = Field(default=6, ge=1)
    local_epochs: int = Field(default=2, ge=1)
    batches_per_epoch: int | None = Field(default=None, ge=1, description="default: all data")
    batch_size: int = Field(default=16, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    seed: int = 0
    queue_policy: Literal["fifo", "backward-first"] = "fifo"
    schedule: str | None = Field(
        default=None, description="follow `mpsl schedule --json` output: one hop, several helpers"
    )
    out: str | None = None
    plan: str | None = Field(default=None, description="'auto' (plan first) or a plan file")
    profile: str | None = Field(default=None, description="profile file or shipped name (plan)")
    cluster: str | None = Field(default=None, description="cluster file (plan)")
    first_cut: int | None = Field(default=None, ge=1, description="data owner keeps 1..first")
    last_cut: int | None = Field(default=None, ge=1, description="data owner keeps last+1..S")
    objective: Literal["epoch", "paper", "cost"] = "epoch"

    @model_validator(mode="after")
    def _cuts_or_hops(self) -> RunConfig:
        both = self.cuts is not None and self.compute_nodes is not None
        if both and len(self.cuts or []) - 1 != self.compute_nodes:
            raise ValueError(
                f"cuts {self.cuts} make {len(self.cuts or []) - 1} compute-node parts but "
                f"compute_nodes is {self.compute_nodes}; give one of them"
            )
        if self.nodes is not None:
            check_node_names(self.nodes, self.data_owners)
            hops = len(self.cuts) - 1 if self.cuts is not None else self.compute_nodes
            if hops is not None and hops != len(self.nodes):
                raise ValueError(
                    f"nodes {self.nodes} name {len(self.nodes)} compute nodes but the run has "
                    f"{hops} middle parts"
                )
        return self

    @property
    def parts(self) -> int | None:
        """P, when it is fixed by the config."""
        if self.cuts is not None:
            return len(self.cuts) + 1
        return self.compute_nodes + 2 if self.compute_nodes else None

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
        """Read a TOML (or JSON) config; ``overrides`` (e.g. from flags) win over the file."""
        data = read_data(path)
        data.update(overrides or {})
        return parse_model(cls, data, str(path))

    @classmethod
    def from_values(cls, values: dict[str, Any], source: str = "options") -> RunConfig:
        """Validate ``values`` (flags); errors name the field."""
        return parse_model(cls, values, source)
