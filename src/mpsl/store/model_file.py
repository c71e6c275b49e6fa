"""The trained model as a file: one safetensors file of the global model, and how to rebuild it.

    DIR/model.safetensors   the global model's state dict (all parts, the zoo's layer names)
    DIR/model.json          {"format": "mpsl-model", "model", "num_classes", "input_shape",
                             "cuts", "nodes", "rounds", "dataset"}

``load_trained(DIR)`` gives back a plain ``nn.Module`` (the zoo's ``LayerChain``) that runs
anywhere torch does, without MP-SL's runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file

from mpsl.errors import FormatError
from mpsl.fileformat import load_model
from mpsl.models import LayerChain, build_model
from mpsl.store.atomic import write_text
from mpsl.store.rundir import WEIGHTS

META = "model.json"


class ModelMeta(BaseModel):
    """What rebuilding a trained model needs (model.json)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str = Field(default="mpsl-model", pattern="^mpsl-model$")
    model: str
    num_classes: int = Field(gt=0)
    input_shape: list[int] = Field(min_length=1)
    cuts: list[int]
    nodes: list[str] | None = None
    rounds: int = Field(ge=0, description="rounds the model was trained for")
    dataset: str


def save_trained(
    out: str | Path,
    model: LayerChain,
    *,
    cuts: Sequence[int],
    nodes: Sequence[str] | None,
    rounds: int,
    dataset: str,
) -> Path:
    """Write ``model`` (weights, then how to rebuild it) into the run directory ``out``."""
    out = Path(out)
    meta = ModelMeta(
        model=model.model_name,
        num_classes=_classes(model),
        input_shape=list(model.input_shape),
        cuts=list(cuts),
        nodes=list(nodes) if nodes else None,
        rounds=rounds,
        dataset=dataset,
    )
    tmp = out / f".{WEIGHTS}.tmp"
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(out / WEIGHTS)
    write_text(out / META, meta.model_dump_json(indent=1) + "\n")
    return out / WEIGHTS


def _classes(model: LayerChain) -> int:
    """The size of the model's last output dimension (classes, or a token model's vocabulary)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(model.example_input(1))
    model.train(was_training)
    return int(out.shape[-1])


def load_meta(path: str | Path) -> ModelMeta:
    """model.json of a run directory."""
    return load_model(ModelMeta, Path(path) / META)


def load_trained(path: str | Path) -> LayerChain:
    """The trained model of a run directory, as a plain ``nn.Module`` in eval mode."""
    path = Path(path)
    if not (path / META).is_file() or not (path / WEIGHTS).is_file():
        raise FormatError(
            f"{path}: no trained model ({META} and {WEIGHTS} are written when a run ends)"
        )
    meta = load_meta(path)
    model = build_model(meta.model, meta.num_classes, tuple(meta.input_shape))
    try:
        state = load_file(str(path / WEIGHTS))
        model.load_state_dict(state)
    except (RuntimeError, OSError) as exc:  # torch and safetensors say what did not match
        raise FormatError(f"{path / WEIGHTS}: does not fit {meta.model}: {exc}") from None
    return model.eval()
