"""Importing the reference profiles (MP-SL authors' measurements) from their CSV tables.

``<model>_<dataset>_<device>.csv`` holds ``layer,fwd_ms,bwd_ms,opt_ms`` and
``<model>_<dataset>_memory.csv`` holds ``layer,output_kb,weights_kb`` (KiB), batch size 128.
An all-zero timing row means "not measured": that device is left out of that layer.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mpsl.errors import FormatError
from mpsl.models import build_model
from mpsl.profile.format import LayerProfile, Profile, Timing

REFERENCE_BATCH = 128
# The reference ResNet-101 uses basic blocks; our zoo calls that layering resnet101_basic.
ZOO_NAME = {"vgg19": "vgg19", "resnet101": "resnet101_basic"}
INPUT_SHAPE = {"CIFAR": (3, 32, 32), "MNIST": (1, 28, 28)}


def _rows(path: Path, columns: list[str]) -> list[list[float]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["layer", *columns]:
            raise FormatError(f"{path}: expected header layer,{','.join(columns)}; got {header}")
        rows = []
        for n, row in enumerate(reader, 1):
            try:
                values = [float(v) for v in row]
            except ValueError:
                raise FormatError(f"{path}: row {n} is not numeric: {row}") from None
            if len(values) != len(columns) + 1 or int(values[0]) != n:
                raise FormatError(f"{path}: row {n} should be layer {n} with {columns}; got {row}")
            rows.append(values[1:])
    return rows


def import_reference(directory: str | Path, model: str, dataset: str) -> Profile:
    """Merge every device table and the memory table of (model, dataset) into one Profile."""
    directory = Path(directory)
    memory_path = directory / f"{model}_{dataset}_memory.csv"
    if not memory_path.is_file():
        raise FormatError(f"{memory_path}: not found (needed for output and weight sizes)")
    memory = _rows(memory_path, ["output_kb", "weights_kb"])
    # Only the CIFAR tables follow our zoo's layering; MNIST variants get generic names.
    zoo_layering = model in ZOO_NAME and dataset == "CIFAR"
    names = build_model(ZOO_NAME[model]).layer_names() if zoo_layering else []
    if names and len(names) != len(memory):
        raise FormatError(f"{memory_path}: {len(memory)} layers, but {model} has {len(names)}")
    timings: list[dict[str, Timing]] = [{} for _ in memory]
    prefix = f"{model}_{dataset}_"
    for path in sorted(directory.glob(f"{prefix}*.csv")):
        device = path.stem[len(prefix) :]
        if device == "memory":
            continue
        rows = _rows(path, ["fwd_ms", "bwd_ms", "opt_ms"])
        if len(rows) != len(memory):
            raise FormatError(f"{path}: {len(rows)} layers; the memory table has {len(memory)}")
        for i, (fwd, bwd, opt) in enumerate(rows):
            if fwd or bwd or opt:
                timings[i][device] = Timing(fwd=fwd, bwd=bwd, opt=opt)
    layers = [
        LayerProfile(
            name=names[i] if names else f"layer{i + 1}",
            output_bytes=round(out_kb * 1024),
            param_bytes=round(w_kb * 1024),
            ms=timings[i],
        )
        for i, (out_kb, w_kb) in enumerate(memory)
    ]
    shape = INPUT_SHAPE.get(dataset)
    return Profile(
        model=ZOO_NAME.get(model, model),
        batch_size=REFERENCE_BATCH,
        input_shape=list(shape) if shape else None,
        input_bytes=REFERENCE_BATCH * 4 * (shape[0] * shape[1] * shape[2]) if shape else None,
        source=f"reference profiles (MP-SL authors' measurements): {directory.name}/{prefix}*.csv",
        layers=layers,
    )


def import_all(directory: str | Path) -> dict[str, Profile]:
    """Every (model, dataset) of a reference directory, keyed ``<model>_<dataset>``."""
    directory = Path(directory)
    keys = sorted(p.name[: -len("_memory.csv")] for p in directory.glob("*_memory.csv"))
    if not keys:
        raise FormatError(f"{directory}: no <model>_<dataset>_memory.csv tables found")
    return {k: import_reference(directory, *k.rsplit("_", 1)) for k in keys}
