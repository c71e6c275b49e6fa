"""gpt_small: a small decoder-only transformer as a chain (embedding, blocks, norm, head)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mpsl.models.chain import LayerChain


class Embedding(nn.Module):
    """Token plus learned position embedding: (B, T) int64 -> (B, T, D)."""

    def __init__(self, vocab: int, seq_len: int, dim: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(seq_len, dim)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.tokens(idx) + self.positions(pos)


class Block(nn.Module):
    """Pre-norm causal self-attention and MLP: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        # (B, T, D) -> (B, heads, T, D/heads)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


def gpt_small(
    num_classes: int = 256,
    input_shape: tuple[int, ...] = (64,),
    dim: int = 128,
    depth: int = 4,
    heads: int = 4,
) -> LayerChain:
    """A decoder-only transformer; ``num_classes`` is the vocabulary, ``input_shape`` is (T,)."""
    (seq_len,) = input_shape
    layers: list[tuple[str, nn.Module]] = [("embed", Embedding(num_classes, seq_len, dim))]
    layers += [(f"block{i + 1}", Block(dim, heads)) for i in range(depth)]
    layers += [("norm", nn.LayerNorm(dim)), ("head", nn.Linear(dim, num_classes))]
    return LayerChain("gpt_small", layers, input_shape, input_dtype=torch.long)
