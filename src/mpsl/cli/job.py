"""JobConfig: what the CLI does around one run (report, plan, schedule) and the RunConfig it runs.

One flat config file (TOML or JSON, docs/formats.md) holds both: each key goes to the model that
owns it, so the runtime's ``RunConfig`` carries only what the runtime reads. Each description is
the help of the field's flag (``mpsl.cli.options``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from mpsl.errors import ConfigError
from mpsl.fileformat import parse_model, read_data
from mpsl.plan.types import ObjectiveName
from mpsl.runtime.config import NOT_BOOLEAN, RunConfig


class JobConfig(BaseModel):
    """One ``mpsl run`` (or ``mpsl coordinator``): the RunConfig and what the CLI does with it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: RunConfig = Field(default_factory=RunConfig, description="What the runtime reads.")
    out: Path = Field(default=Path("runs/latest"), description="Directory of the run's report.")
    plan: str | None = Field(
        default=None,
        description="'auto' to plan the cuts and compute nodes first, or a `mpsl plan` file.",
    )
    profile: str | None = Field(
        default=None, description="Profile file or shipped profile name, for plan auto."
    )
    cluster: Path | None = Field(default=None, description="Cluster file, for plan auto.")
    first_cut: Annotated[int | None, NOT_BOOLEAN] = Field(
        default=None, ge=1, description="Plan auto: the data owner keeps layers 1..FIRST_CUT."
    )
    last_cut: Annotated[int | None, NOT_BOOLEAN] = Field(
        default=None, ge=1, description="Plan auto: the data owner keeps LAST_CUT+1..S."
    )
    objective: ObjectiveName = Field(
        default="epoch", description="What plan auto optimizes (docs/planner.md)."
    )
    schedule: Path | None = Field(
        default=None,
        description="Follow a `mpsl schedule --json` result: one hop (2 cuts), a compute node per "
        "helper serving its data owners in the scheduled order every batch "
        "(needs batches_per_epoch).",
    )

    @classmethod
    def from_flat(cls, values: Mapping[str, Any], source: str) -> JobConfig:
        """Validate flat ``values`` (config file keys, flags), each key by the model owning it."""
        check_keys(values, source)
        run = parse_model(RunConfig, {k: v for k, v in values.items() if k in RUN_FIELDS}, source)
        job = {k: v for k, v in values.items() if k not in RUN_FIELDS}
        return parse_model(cls, {**job, "run": run}, source)


RUN_FIELDS: dict[str, FieldInfo] = dict(RunConfig.model_fields)
# Every key of a flat config, each with the field that declares it (and its flag).
FIELDS: dict[str, FieldInfo] = RUN_FIELDS | {
    name: info for name, info in JobConfig.model_fields.items() if name != "run"
}


def refuse_schedule(job: JobConfig) -> None:
    """A deployment (processes on hosts) runs the multihop chain: ConfigError for a schedule."""
    if job.schedule is not None:
        raise ConfigError(
            "a deployment runs the multihop chain; following a schedule (horizontal one hop) "
            "runs in one process (mpsl run --engine cooperative or threads)",
            field="schedule",
        )


def check_keys(values: Mapping[str, Any], source: str) -> None:
    """Raise ConfigError naming the first key of ``values`` that no field declares."""
    unknown = sorted(set(values) - FIELDS.keys())
    if unknown:
        raise ConfigError(
            f"unknown key; a run config takes {', '.join(FIELDS)}", field=unknown[0], source=source
        )


def load_job(path: Path | None, flags: Mapping[str, Any]) -> JobConfig:
    """The job of config file ``path`` (if any) and the given ``flags``, which win over the file."""
    if path is None:
        return JobConfig.from_flat(flags, "flags")
    data = read_data(path)
    if not isinstance(data, dict):
        raise ConfigError("expected a table of keys", source=str(path))
    check_keys(data, str(path))
    return JobConfig.from_flat(data | dict(flags), f"{path} and flags" if flags else str(path))
