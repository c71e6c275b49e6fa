"""The splittable model zoo: every model is a LayerChain of indivisible layers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from mpsl.errors import ModelError
from mpsl.models.chain import LayerChain, LayerInfo, chain_of, describe_layers
from mpsl.models.gpt import gpt_small
from mpsl.models.resnet import resnet
from mpsl.models.small import digits_cnn, lenet5
from mpsl.models.trace import trace_chain
from mpsl.models.user import build_user_model, is_spec
from mpsl.models.vgg import vgg

__all__ = [
    "MODELS",
    "LayerChain",
    "LayerInfo",
    "ModelSpec",
    "build_model",
    "chain_of",
    "describe_layers",
    "is_spec",
    "trace_chain",
]


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model of the zoo, and its defaults."""

    name: str
    builder: Callable[..., LayerChain]
    input_shape: tuple[int, ...]
    num_classes: int
    summary: str


def _spec(
    name: str,
    builder: Callable[..., LayerChain],
    shape: tuple[int, ...],
    classes: int,
    summary: str,
) -> ModelSpec:
    return ModelSpec(name, builder, shape, classes, summary)


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        _spec("digits_cnn", digits_cnn, (1, 8, 8), 10, "small CNN for 8x8 digits"),
        _spec("lenet5", lenet5, (1, 28, 28), 10, "LeNet-5"),
        _spec("vgg11", partial(vgg, "vgg11"), (3, 32, 32), 10, "VGG-11"),
        _spec("vgg16", partial(vgg, "vgg16"), (3, 32, 32), 10, "VGG-16"),
        _spec("vgg19", partial(vgg, "vgg19"), (3, 32, 32), 10, "VGG-19 (reference layering)"),
        _spec("resnet18", partial(resnet, "resnet18"), (3, 32, 32), 10, "ResNet-18"),
        _spec("resnet34", partial(resnet, "resnet34"), (3, 32, 32), 10, "ResNet-34"),
        _spec("resnet50", partial(resnet, "resnet50"), (3, 32, 32), 10, "ResNet-50"),
        _spec("resnet101", partial(resnet, "resnet101"), (3, 32, 32), 10, "ResNet-101"),
        _spec(
            "resnet101_basic",
            partial(resnet, "resnet101_basic"),
            (3, 32, 32),
            10,
            "ResNet-101 with basic blocks (reference layering)",
        ),
        _spec("gpt_small", gpt_small, (64,), 256, "small decoder-only transformer"),
    ]
}


def build_model(
    name: str,
    num_classes: int | None = None,
    input_shape: tuple[int, ...] | None = None,
    seed: int | None = None,
) -> LayerChain:
    """Build zoo model ``name``, or the model of a spec ``file.py:function`` or
    ``package.module:function`` (docs/models.md); a seed makes the initial weights reproducible."""
    if is_spec(name):
        return build_user_model(name, num_classes, input_shape, seed)
    if name not in MODELS:
        raise ModelError(
            f"unknown model '{name}'; choose one of: {', '.join(MODELS)}, or a model of your "
            "own as FILE.py:FUNCTION or PACKAGE.MODULE:FUNCTION"
        )
    spec = MODELS[name]
    shape = tuple(input_shape) if input_shape is not None else spec.input_shape
    if len(shape) != len(spec.input_shape):
        raise ModelError(
            f"{name} takes an input shape of {len(spec.input_shape)} numbers "
            f"(like {','.join(map(str, spec.input_shape))}); got {','.join(map(str, shape))}"
        )
    classes = num_classes if num_classes is not None else spec.num_classes
    if classes < 1:
        raise ModelError(f"number of classes must be positive; got {classes}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return spec.builder(num_classes=classes, input_shape=shape)
