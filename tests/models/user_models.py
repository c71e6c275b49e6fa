"""Models as users write them, loaded by the tests through specs like ``user_models.py:resnet``.

None of them is a chain: tracing has to find the layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import mpsl.models


class Residual(nn.Module):
    """Two convolutions with BatchNorm around a skip connection, as torchvision writes it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class ResidualCNN(nn.Module):
    def __init__(self, num_classes: int, channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(channels, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Residual(8), Residual(8))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.stem(x)))
        x = self.layer1(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def resnet(num_classes: int = 10, input_shape: tuple[int, ...] = (3, 8, 8)) -> nn.Module:
    return ResidualCNN(num_classes, input_shape[0])


class Attention(nn.Module):
    """Causal self-attention written out: a mask buffer sliced by the sequence length."""

    def __init__(self, dim: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("mask", torch.tril(torch.ones(max_len, max_len)).bool())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, max_len)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int, seq_len: int, dim: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(seq_len, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, 2, seq_len) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tokens(idx) + self.positions[: idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def transformer(num_classes: int = 32, input_shape: tuple[int, ...] = (8,)) -> nn.Module:
    return TinyGPT(num_classes, input_shape[0])


class Functional(nn.Module):
    """No activation modules: F.relu, torch.flatten, two branches added with x + y."""

    def __init__(self, num_classes: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.left = nn.Linear(4 * 64, 16)
        self.right = nn.Linear(4 * 64, 16)
        self.out = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        x = torch.flatten(x, 1)
        y = F.relu(self.left(x)) + torch.tanh(self.right(x))
        return self.out(y * 0.5)


def functional(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 8, 8)) -> nn.Module:
    return Functional(num_classes, input_shape[0])


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = x * 2
        return self.fc(x)


def untraceable(input_shape: tuple[int, ...] = (4,)) -> nn.Module:
    return DataDependent()


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fc(x + y)


def two_inputs(input_shape: tuple[int, ...] = (4,)) -> nn.Module:
    return Pair()


def sequential(num_classes: int = 10) -> nn.Module:
    """No input_shape argument: the run has to say it."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))


def declared() -> nn.Module:
    """Layers listed by hand, input shape declared: nothing to trace, nothing to pass."""
    return mpsl.models.chain_of(
        [("flat", nn.Flatten()), ("hidden", nn.Linear(64, 8)), ("out", nn.Linear(8, 10))],
        input_shape=(1, 8, 8),
    )


def fixed_classes(input_shape: tuple[int, ...] = (4,)) -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3))


def not_a_module() -> int:
    return 3


def broken(num_classes: int = 10) -> nn.Module:
    raise ValueError("no such width")


NOT_CALLABLE = 7
