"""Input reconstruction from the activations a compute node receives: a learned inversion.

The attacker owns auxiliary data from the same distribution as the data owners' (a held-out
split) and the weights of the model up to its hop (the global weights at the start of the round:
an upper bound on what a node that colludes with one data owner, or reads the coordinator's
global model, knows). It runs its auxiliary inputs through that prefix, trains a small decoder
(activation -> input) on the pairs, then decodes what it received. Success is measured two ways:
mean squared error against the true inputs, beside the error of the best input-free guess (the
auxiliary data's mean image); and the accuracy, on the reconstructions, of a classifier trained on
the real auxiliary inputs (beside its accuracy on the true inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mpsl.data.base import Labeled


@dataclass(frozen=True)
class ReconstructionResult:
    """How well one node's received activations decode back into the inputs."""

    samples: int
    mse: float
    baseline_mse: float  # the auxiliary data's mean image as every guess
    classifier_accuracy: float  # on the reconstructions
    classifier_accuracy_true: float  # the same classifier on the true inputs
    chance: float  # most frequent label's share


def decoder(activation_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> nn.Module:
    """A two-layer perceptron from a flattened activation to an input of ``input_shape``."""
    d_in = int(np.prod(activation_shape))
    d_out = int(np.prod(input_shape))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(d_in, 512),
        nn.ReLU(),
        nn.Linear(512, d_out),
        nn.Unflatten(1, input_shape),
    )


def _prefix_outputs(prefix: nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    prefix.eval()
    with torch.no_grad():
        return torch.cat([prefix(x[i : i + batch]) for i in range(0, len(x), batch)])


def train_inversion(
    prefix: nn.Module, aux: torch.Tensor, *, epochs: int, seed: int, batch: int = 32
) -> nn.Module:
    """A decoder trained on ``aux`` inputs and their ``prefix`` outputs (Adam, MSE)."""
    gen = torch.Generator().manual_seed(seed)
    # the decoder's weights from the attacker's seed; the caller's RNG is left as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        acts = _prefix_outputs(prefix, aux)
        net = decoder(tuple(acts.shape[1:]), tuple(aux.shape[1:]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(aux), generator=gen)
        for i in range(0, len(aux), batch):
            idx = order[i : i + batch]
            loss = nn.functional.mse_loss(net(acts[idx]), aux[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


def reconstruct(
    prefix: nn.Module,
    aux: Labeled,
    received: torch.Tensor,
    truth: Labeled,
    *,
    epochs: int,
    seed: int,
) -> ReconstructionResult:
    """Train an inversion of ``prefix`` on ``aux``, decode ``received``, score against ``truth``."""
    from sklearn.linear_model import LogisticRegression

    net = train_inversion(prefix, aux.x, epochs=epochs, seed=seed)
    with torch.no_grad():
        guess = torch.cat([net(received[i : i + 256]) for i in range(0, len(received), 256)])
    mse = float(((guess - truth.x) ** 2).mean())
    mean_image = aux.x.mean(dim=0, keepdim=True)
    baseline = float(((mean_image - truth.x) ** 2).mean())
    judge = LogisticRegression(max_iter=2000)
    judge.fit(aux.x.reshape(len(aux), -1).numpy(), aux.y.numpy())
    y = truth.y.numpy()
    on_guess = float(np.mean(judge.predict(guess.reshape(len(guess), -1).numpy()) == y))
    on_truth = float(np.mean(judge.predict(truth.x.reshape(len(truth), -1).numpy()) == y))
    chance = float(torch.bincount(truth.y).max()) / len(truth)
    return ReconstructionResult(len(truth), mse, baseline, on_guess, on_truth, chance)
