"""Defences a data owner applies to what it sends: clipping with Gaussian noise, max-norm label
perturbation, and NoPeek's distance correlation (docs/privacy.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class Defences:
    """What a data owner does to what it sends; the fields are RunConfig's of the same names."""

    activation_clip: float | None = None
    activation_noise: float = 0.0
    gradient_clip: float | None = None
    gradient_noise: float = 0.0
    nopeek: float = 0.0
    label_defence: str = "none"

    @classmethod
    def of(cls, config: object) -> Defences:
        """The defences set on ``config`` (a RunConfig)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    @property
    def on(self) -> bool:
        """Whether any defence is on."""
        return self != Defences()


NO_DEFENCES = Defences()

# Added to squared distances and variances so that sqrt has a gradient at zero.
_EPS = 1e-12


def clip_rows(t: torch.Tensor, clip: float) -> torch.Tensor:
    """``t`` with every sample (first dimension) scaled to an L2 norm of at most ``clip``."""
    norms = t.flatten(1).norm(dim=1).clamp_min(_EPS)
    scale = (clip / norms).clamp(max=1.0)
    return t * scale.view(-1, *([1] * (t.dim() - 1)))


def clip_and_noise(
    t: torch.Tensor, clip: float, noise: float, generator: torch.Generator
) -> torch.Tensor:
    """The Gaussian mechanism per sample: clip to ``clip``, add N(0, (noise * clip)^2) noise."""
    clipped = clip_rows(t, clip)
    if noise == 0:
        return clipped
    # The noise is drawn outside autograd: a constant, so the gradient passes straight through.
    eps = torch.randn(t.shape, generator=generator, dtype=t.dtype) * (noise * clip)
    return clipped + eps


def max_norm(grad: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Li et al. (ICLR 2022) max-norm: each sample's gradient g_j becomes g_j * (1 + s_j * xi_j),
    xi_j ~ N(0, 1), s_j = sqrt(max_k |g_k|^2 / |g_j|^2 - 1), so every sample's expected squared
    norm is the batch's largest and the norm no longer tells the classes apart."""
    norms = grad.flatten(1).norm(dim=1)
    top = norms.max()
    std = (top**2 / norms.clamp_min(_EPS) ** 2 - 1).clamp_min(0).sqrt()
    xi = torch.randn(norms.shape, generator=generator, dtype=grad.dtype)
    return grad * (1 + std * xi).view(-1, *([1] * (grad.dim() - 1)))


def _centred_distances(t: torch.Tensor) -> torch.Tensor:
    """The doubly centred pairwise distance matrix of the samples of ``t``."""
    flat = t.flatten(1)
    sq = (flat.unsqueeze(0) - flat.unsqueeze(1)).pow(2).sum(-1)
    d = (sq + _EPS).sqrt()
    return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()


def distance_correlation(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Sample distance correlation dCor(x, z) (Székely et al. 2007) of two batches, in [0, 1];
    NoPeek (Vepakomma et al. 2020) minimises it between the inputs and the first cut."""
    a, b = _centred_distances(x.detach()), _centred_distances(z)
    dcov2 = (a * b).mean()
    dvar = ((a * a).mean() * (b * b).mean()).sqrt()
    return (dcov2.clamp_min(0) / (dvar + _EPS) + _EPS).sqrt()


def gaussian_epsilon(noise: float, releases: int, delta: float) -> float:
    """(epsilon, delta)-DP of ``releases`` Gaussian mechanisms on one sample, each clipped to C
    with noise sigma = ``noise`` * C: replacing the sample moves a clipped value by at most 2C,
    so each is rho = (2C)^2 / (2 sigma^2) = 2 / noise^2 zero-concentrated DP; rho adds up under
    composition, and rho-zCDP is (rho + 2 sqrt(rho ln(1/delta)), delta)-DP (Bun and Steinke,
    "Concentrated Differential Privacy", TCC 2016, Propositions 1.6, 1.9 and 1.3)."""
    rho = releases * 2 / noise**2
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


DELTA = 1e-5  # the delta of the reported (epsilon, delta)


def privacy_entry(d: Defences, releases: int | None) -> dict[str, object] | None:
    """The summary's ``privacy`` entry: each Gaussian mechanism's epsilon per release and over
    ``releases`` releases of one sample (None: not a whole number of epochs); None when no
    noise is on."""
    entry: dict[str, object] = {"delta": DELTA, "releases_per_sample": releases}
    for side in ("activation", "gradient"):
        noise = getattr(d, f"{side}_noise")
        if noise > 0:
            entry[side] = {
                "noise_multiplier": noise,
                "clip": getattr(d, f"{side}_clip"),
                "epsilon_per_release": gaussian_epsilon(noise, 1, DELTA),
                "epsilon_all_releases": gaussian_epsilon(noise, releases, DELTA)
                if releases
                else None,
            }
    return entry if len(entry) > 2 else None
