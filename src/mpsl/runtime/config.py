"""RunConfig: what the runtime reads for one training run, validated; errors name the field."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mpsl.errors import ConfigError
from mpsl.fileformat import parse_model
from mpsl.runtime.accelerator import check_device_spec
from mpsl.tasks import node_name_problem


def _refuse_booleans(value: Any) -> Any:
    """A boolean, alone or in a list, where a number is due: pydantic would read true as 1."""
    if isinstance(value, bool) or (
        isinstance(value, list) and any(isinstance(v, bool) for v in value)
    ):
        raise ValueError("expected a number, not a boolean (true/false); write the number itself")
    return value


def _one_or_list(value: Any) -> Any:
    """A single name where a list of names is due: a list of one (TOML ``node_device = "cuda"``)."""
    return [value] if isinstance(value, str) else value


def _devices(value: list[str] | None) -> list[str] | None:
    """Each item a device spec (cpu, cuda, cuda:N)."""
    for spec in value or []:
        check_device_spec(spec)
    return value


# The annotation of every numeric field of the run's configs (RunConfig, the CLI's JobConfig).
NOT_BOOLEAN = BeforeValidator(_refuse_booleans)


def check_node_names(nodes: list[str]) -> None:
    """Raise ValueError unless ``nodes`` are distinct names no other role of the run uses."""
    for name in nodes:
        if problem := node_name_problem(name):
            raise ValueError(problem)
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"a compute node hosts one part only; got {nodes}")


class RunConfig(BaseModel):
    """What the runtime reads for one MP-SL training run; each description is the flag's help.

    The CLI's job-level settings (output directory, planning, a schedule to follow) live in
    ``mpsl.cli.job.JobConfig``, which reads the same flat config file (docs/formats.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        default="digits_cnn",
        description="A zoo model (`mpsl models`), or your own as FILE.py:FUNCTION or "
        "PACKAGE.MODULE:FUNCTION (docs/models.md).",
    )
    dataset: Literal["digits", "mnist", "cifar10", "synthetic", "npz", "images", "python"] = Field(
        default="digits",
        description="Training and test data: built in, or your own read from data_path: npz (a "
        "NumPy .npz file) or images (a folder of class folders); python: given to mpsl.train.",
    )
    data_path: str | None = Field(
        default=None,
        description="Where mnist, cifar10, npz and images are read: the directory of the MNIST "
        "IDX files or CIFAR-10 python batches, the .npz file, the image folder.",
    )
    input_shape: Annotated[list[int] | None, NOT_BOOLEAN] = Field(
        default=None,
        min_length=1,
        description="Shape of one synthetic sample, e.g. 3,32,32 (default: 1,8,8).",
    )
    num_classes: Annotated[int | None, NOT_BOOLEAN] = Field(
        default=None,
        gt=0,
        description="Classes the model predicts; every label must be below it (default: the "
        "dataset's, 10 for synthetic data).",
    )
    data_owners: Annotated[int, NOT_BOOLEAN] = Field(
        default=4, ge=1, description="Number of data owners K."
    )
    partition: Literal["iid", "dirichlet"] = Field(
        default="iid",
        description="How the data owners share the data: iid, or dirichlet for label skew.",
    )
    alpha: Annotated[float, NOT_BOOLEAN] = Field(
        default=0.5, gt=0, description="Dirichlet concentration: smaller is more skewed."
    )
    cuts: Annotated[list[int] | None, NOT_BOOLEAN] = Field(
        default=None,
        min_length=1,
        description="Cut list c0,c1,...,cN: the data owner keeps layers 1..c0 and cN+1..S.",
    )
    compute_nodes: Annotated[int | None, NOT_BOOLEAN] = Field(
        default=None,
        ge=1,
        description="Compute nodes N with an even split, used without cuts (default: 2).",
    )
    nodes: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Name of the compute node hosting each middle part, e.g. vm2,vm1.",
    )
    rounds: Annotated[int, NOT_BOOLEAN] = Field(
        default=6, ge=1, description="Rounds; each ends with FedAvg and a test evaluation."
    )
    local_epochs: Annotated[int, NOT_BOOLEAN] = Field(
        default=2, ge=1, description="Local epochs r per round."
    )
    batches_per_epoch: Annotated[int | None, NOT_BOOLEAN] = Field(
        default=None,
        ge=1,
        description="Batches B per epoch (default: all of a data owner's share).",
    )
    batch_size: Annotated[int, NOT_BOOLEAN] = Field(
        default=16, ge=1, description="Samples per batch."
    )
    optimizer: Literal["sgd", "adam"] = Field(default="sgd", description="Optimizer of every part.")
    lr: Annotated[float, NOT_BOOLEAN] = Field(default=0.05, gt=0, description="Learning rate.")
    momentum: Annotated[float, NOT_BOOLEAN] = Field(
        default=0.9, ge=0, lt=1, description="SGD momentum."
    )
    weight_decay: Annotated[float, NOT_BOOLEAN] = Field(
        default=0.0, ge=0, description="Weight decay (L2 penalty)."
    )
    seed: Annotated[int, NOT_BOOLEAN] = Field(
        default=0, description="Seed of the initial weights, the data split and the data order."
    )
    min_data_owners: Annotated[float, NOT_BOOLEAN] = Field(
        default=1,
        gt=0,
        description="Data owners a round needs: a count (1, 2, ...), or a fraction of the data "
        "owners below 1 (0.5: half, rounded up); a round left with fewer fails the run.",
    )
    # QueuePolicy's policies that need no prescribed order (tests/tasks keeps them equal).
    queue_policy: Literal["fifo", "backward-first"] = Field(
        default="fifo", description="The order in which a compute node serves queued tasks."
    )
    node_memory_budget: Annotated[int | None, NOT_BOOLEAN] = Field(
        default=None,
        gt=0,
        description="Bytes of part instances and saved activations a compute node may hold, "
        "whatever the number of data owners; the others wait on local disk (docs/memory.md). "
        "Default: no budget, every instance resident.",
    )
    node_device: Annotated[
        list[str] | None, BeforeValidator(_one_or_list), AfterValidator(_devices)
    ] = Field(
        default=None,
        min_length=1,
        description="Where compute nodes compute: cpu, cuda or cuda:N, one for every compute node "
        "or one per compute node in order (e.g. cuda:0,cuda:1); data owners stay on the CPU "
        "(docs/memory.md, GPUs). Default: cpu.",
    )
    threads: Annotated[int | None, NOT_BOOLEAN] = Field(
        default=None,
        ge=1,
        description="Torch threads of each role: of every member process (engine processes; "
        "members of mpsl coordinator started without --threads), of each role thread (engine "
        "threads), of the one thread of engine cooperative. Default: chosen from the cores "
        "and the data owners (docs/deploy.md, Threads).",
    )
    # Defences a data owner applies to what it sends (docs/privacy.md); all off by default.
    activation_clip: Annotated[float | None, NOT_BOOLEAN] = Field(
        default=None,
        gt=0,
        description="Clip each sample's activation sent to the first compute node to this L2 "
        "norm (default: no clipping).",
    )
    activation_noise: Annotated[float, NOT_BOOLEAN] = Field(
        default=0.0,
        ge=0,
        description="Gaussian noise on the clipped activations: standard deviation "
        "activation_noise x activation_clip.",
    )
    gradient_clip: Annotated[float | None, NOT_BOOLEAN] = Field(
        default=None,
        gt=0,
        description="Clip each sample's gradient sent back to the last compute node to this L2 "
        "norm (default: no clipping).",
    )
    gradient_noise: Annotated[float, NOT_BOOLEAN] = Field(
        default=0.0,
        ge=0,
        description="Gaussian noise on the clipped gradients: standard deviation gradient_noise "
        "x gradient_clip.",
    )
    nopeek: Annotated[float, NOT_BOOLEAN] = Field(
        default=0.0,
        ge=0,
        description="NoPeek: weight of the distance correlation between the inputs and the first "
        "part's output, added to the data owner's loss.",
    )
    label_defence: Literal["none", "max-norm"] = Field(
        default="none",
        description="Perturbation of the gradients sent to the last compute node against label "
        "inference: none, or max-norm (Li et al., ICLR 2022).",
    )

    @model_validator(mode="after")
    def _cuts_or_hops(self) -> RunConfig:
        both = self.cuts is not None and self.compute_nodes is not None
        if both and len(self.cuts or []) - 1 != self.compute_nodes:
            raise ValueError(
                f"cuts {self.cuts} make {len(self.cuts or []) - 1} compute-node parts but "
                f"compute_nodes is {self.compute_nodes}; give one of them"
            )
        if self.min_data_owners >= 1 and not float(self.min_data_owners).is_integer():
            raise ValueError(
                f"min_data_owners {self.min_data_owners}: a count is a whole number, a fraction "
                "is below 1"
            )
        if self.min_data_owners > self.data_owners:
            raise ValueError(
                f"min_data_owners {self.min_data_owners:g} is more than the {self.data_owners} "
                "data owners"
            )
        for noise, clip in (
            ("activation_noise", "activation_clip"),
            ("gradient_noise", "gradient_clip"),
        ):
            if getattr(self, noise) > 0 and getattr(self, clip) is None:
                raise ValueError(
                    f"{noise} {getattr(self, noise):g} needs {clip}: the noise's standard "
                    f"deviation is {noise} x {clip}; give --{clip.replace('_', '-')}"
                )
        if self.nodes is not None:
            check_node_names(self.nodes)
            hops = len(self.cuts) - 1 if self.cuts is not None else self.compute_nodes
            if hops is not None and hops != len(self.nodes):
                raise ValueError(
                    f"nodes {self.nodes} name {len(self.nodes)} compute nodes but the run has "
                    f"{hops} middle parts"
                )
        return self

    def min_owners(self) -> int:
        """The data owners a round needs, as a count."""
        if self.min_data_owners >= 1:
            return int(self.min_data_owners)
        return max(1, math.ceil(self.min_data_owners * self.data_owners - 1e-9))

    def device_of(self, node: int) -> str:
        """The device spec of the ``node``-th compute node (0-based, in chain order)."""
        if self.node_device is None:
            return "cpu"
        if len(self.node_device) == 1:
            return self.node_device[0]
        return self.node_device[node]

    def check_node_devices(self, nodes: int) -> None:
        """ConfigError unless node_device names one device, or one for each of ``nodes``."""
        given = self.node_device or []
        if len(given) > 1 and len(given) != nodes:
            raise ConfigError(
                f"{given} names {len(given)} devices but the run has {nodes} compute nodes; "
                "give one for all of them, or one for each",
                field="node_device",
            )

    @property
    def parts(self) -> int | None:
        """P, when it is fixed by the config."""
        if self.cuts is not None:
            return len(self.cuts) + 1
        return self.compute_nodes + 2 if self.compute_nodes else None

    @classmethod
    def from_values(cls, values: dict[str, Any], source: str = "options") -> RunConfig:
        """Validate ``values``; a FormatError names ``source`` and each bad field."""
        return parse_model(cls, values, source)
