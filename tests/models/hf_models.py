"""A Hugging Face GPT-2 as a user would split it: its modules, called in order in a forward(x).

GPT2LMHeadModel.forward itself (caches, masks, a ModelOutput) cannot be traced; this wrapper
calls the same modules with one tensor in and one out, and each block's attention, which cannot
be traced either, is kept whole.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel


class GPT2Chain(nn.Module):
    """Token ids (B, T) -> logits (B, T, V), through the modules of ``hf``."""

    def __init__(self, hf: GPT2LMHeadModel) -> None:
        super().__init__()
        t = hf.transformer
        self.wte, self.wpe, self.drop, self.h, self.ln_f = t.wte, t.wpe, t.drop, t.h, t.ln_f
        self.lm_head = hf.lm_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device)
        h = self.drop(self.wte(x) + self.wpe(positions))
        for block in self.h:
            h = block(h)
        return self.lm_head(self.ln_f(h))


def tiny_gpt2(vocab: int, seq_len: int) -> GPT2LMHeadModel:
    """A randomly initialised GPT-2 small enough for a test; untied, so it can be split."""
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=seq_len,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


def gpt2(num_classes: int = 50, input_shape: tuple[int, ...] = (8,)) -> nn.Module:
    return GPT2Chain(tiny_gpt2(num_classes, input_shape[0]))
