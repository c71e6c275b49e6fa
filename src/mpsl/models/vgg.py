"""VGG-11/16/19 as chains of conv+ReLU units, max-pool units, average pool and FC units.

The layer order matches the reference profiles: for 3x32x32 input ``vgg19`` has 25 indivisible
layers (16 conv units, 5 pools, the 7x7 adaptive average pool, 3 fully connected units).
"""

from __future__ import annotations

from torch import nn

from mpsl.errors import ModelError
from mpsl.models.chain import LayerChain

POOL = 0


def _stages(*stages: tuple[int, int]) -> list[int]:
    """VGG layout from (convolutions, width) per stage; each stage ends with a max-pool."""
    return [w for convs, width in stages for w in [width] * convs + [POOL]]


CONFIGS: dict[str, list[int]] = {
    "vgg11": _stages((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    "vgg16": _stages((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    "vgg19": _stages((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}


def vgg(name: str, num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32)) -> LayerChain:
    """Build ``vgg11``, ``vgg16`` or ``vgg19`` for ``input_shape`` (C, H, W)."""
    c, h, w = input_shape
    pools = CONFIGS[name].count(POOL)
    if min(h, w) < 2**pools:
        raise ModelError(
            f"{name} halves the image {pools} times and needs height and width >= {2**pools}; "
            f"got {h}x{w}. Resize the input or choose lenet5 or a resnet."
        )
    layers: list[tuple[str, nn.Module]] = []
    in_ch, conv_i, pool_i = c, 0, 0
    for width in CONFIGS[name]:
        if width == POOL:
            pool_i += 1
            layers.append((f"pool{pool_i}", nn.MaxPool2d(2, 2)))
        else:
            conv_i += 1
            unit = nn.Sequential(nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=True))
            layers.append((f"conv{conv_i}", unit))
            in_ch = width
    layers.append(("avgpool", nn.Sequential(nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten())))
    layers.append(("fc1", nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout())))
    layers.append(("fc2", nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout())))
    layers.append(("fc3", nn.Linear(4096, num_classes)))
    return LayerChain(name, layers, input_shape)
