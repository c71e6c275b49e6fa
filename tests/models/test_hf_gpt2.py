"""A Hugging Face GPT-2 (tiny, random) traced, split and trained; skipped without transformers."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from hf_models import GPT2Chain, gpt2, tiny_gpt2

from mpsl.data.synthetic import load_synthetic
from mpsl.models import build_model, trace_chain
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.setup import optimizer_factory, owner_shares
from mpsl.training.plain import fedavg_round
from mpsl.training.steps import Workload

SPEC = f"{Path(__file__).parent / 'hf_models.py'}:gpt2"


def test_gpt2_is_cut_into_embeddings_attention_and_mlp_halves_and_computes_its_logits():
    hf = tiny_gpt2(50, 8).eval()
    chain = trace_chain(GPT2Chain(hf), "gpt2", (8,)).eval()
    assert chain.layer_names() == [
        "wte", "drop", "h_0_attn", "h_0_mlp", "h_1_attn", "h_1_mlp", "ln_f", "lm_head"
    ]  # fmt: skip
    assert chain.input_dtype == torch.long
    x = torch.randint(0, 50, (3, 8))
    with torch.no_grad():
        assert torch.allclose(chain(x), hf(x).logits, atol=1e-6)


def test_one_round_of_gpt2_equals_fedavg_of_the_unsplit_model():
    data = load_synthetic((8,), 50, train_size=24, test_size=4, seed=1, tokens=True)
    cfg = RunConfig(
        model=SPEC,
        dataset="synthetic",
        input_shape=[8],
        num_classes=50,
        data_owners=2,
        cuts=[2, 4, 6],
        rounds=1,
        local_epochs=1,
        batch_size=4,
        optimizer="adam",
        lr=0.01,
        seed=3,
    )
    chain = build_model(SPEC, 50, (8,), seed=4)
    torch.manual_seed(4)  # the user's own module, with the weights build_model gave the chain
    own = gpt2(num_classes=50, input_shape=(8,))
    start = copy.deepcopy(own.state_dict())
    result = InProcessEngine(cfg, dataset=data, model=chain).run()

    workload = Workload(cfg.batch_size, cfg.local_epochs, cfg.batches_per_epoch, cfg.seed)
    expected = fedavg_round(own, owner_shares(cfg, data), workload, optimizer_factory(cfg), 0)
    trained = result.model.source_state_dict()
    assert trained.keys() == expected.keys()
    assert max(float((trained[k] - expected[k]).abs().max()) for k in expected) < 1e-5
    assert max(float((start[k] - expected[k]).abs().max()) for k in expected) > 1e-3
