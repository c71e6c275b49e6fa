"""ResNets as chains: first conv, pool+BN+ReLU, one layer per residual block, average pool, FC.

``resnet101_basic`` is the reference profiles' variant: basic blocks 3/4/23/3, 37 layers.
"""

from __future__ import annotations

import torch
from torch import nn

from mpsl.models.chain import LayerChain


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), with a residual connection."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


SPECS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet101_basic": (BasicBlock, [3, 4, 23, 3]),
}


def resnet(
    name: str, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)
) -> LayerChain:
    """Build a ResNet from ``SPECS`` for ``input_shape`` (C, H, W)."""
    block, counts = SPECS[name]
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(input_shape[0], 64, 7, 2, 3, bias=False)),
        ("pool", nn.Sequential(nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))),
    ]
    in_ch = 64
    for stage, (width, count) in enumerate(zip([64, 128, 256, 512], counts, strict=True), 1):
        for i in range(count):
            stride = 2 if stage > 1 and i == 0 else 1
            layers.append((f"block{stage}_{i + 1}", block(in_ch, width, stride)))
            in_ch = width * block.expansion
    layers.append(("avgpool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())))
    layers.append(("fc", nn.Linear(in_ch, num_classes)))
    return LayerChain(name, layers, input_shape)
