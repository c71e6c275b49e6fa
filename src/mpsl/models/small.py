"""Small models: ``digits_cnn`` (8x8 digits) and ``lenet5``."""

from __future__ import annotations

import torch
from torch import nn

from mpsl.errors import ModelError
from mpsl.models.chain import LayerChain


def _flat_size(stack: nn.Module, input_shape: tuple[int, ...], model: str) -> int:
    try:
        with torch.no_grad():
            return int(stack(torch.zeros(1, *input_shape)).numel())
    except RuntimeError as exc:
        raise ModelError(f"{model} cannot take input shape {input_shape}: {exc}") from exc


def digits_cnn(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 8, 8)) -> LayerChain:
    """A six-layer CNN sized for scikit-learn's 1x8x8 digits."""
    c = input_shape[0]
    conv1 = nn.Sequential(nn.Conv2d(c, 32, 3, padding=1), nn.ReLU())
    conv2 = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
    pool = nn.MaxPool2d(2)
    conv3 = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU())
    flat = _flat_size(nn.Sequential(conv1, conv2, pool, conv3), input_shape, "digits_cnn")
    fc1 = nn.Sequential(nn.Flatten(), nn.Linear(flat, 128), nn.ReLU())
    fc2 = nn.Linear(128, num_classes)
    layers = [("conv1", conv1), ("conv2", conv2), ("pool", pool), ("conv3", conv3)]
    layers += [("fc1", fc1), ("fc2", fc2)]
    return LayerChain("digits_cnn", layers, input_shape)


def lenet5(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28)) -> LayerChain:
    """LeNet-5 (ReLU, max-pool), seven layers."""
    c = input_shape[0]
    conv1 = nn.Sequential(nn.Conv2d(c, 6, 5, padding=2), nn.ReLU())
    pool1 = nn.MaxPool2d(2)
    conv2 = nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU())
    pool2 = nn.MaxPool2d(2)
    flat = _flat_size(nn.Sequential(conv1, pool1, conv2, pool2), input_shape, "lenet5")
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", conv1),
        ("pool1", pool1),
        ("conv2", conv2),
        ("pool2", pool2),
        ("fc1", nn.Sequential(nn.Flatten(), nn.Linear(flat, 120), nn.ReLU())),
        ("fc2", nn.Sequential(nn.Linear(120, 84), nn.ReLU())),
        ("fc3", nn.Linear(84, num_classes)),
    ]
    return LayerChain("lenet5", layers, input_shape)
