"""The privacy audit: train a run under each defence, record what the compute nodes receive,
attack it from each node's point of view, and report how much leaked.

A defence is a named entry of ``DEFENCES``: how a run is trained under it. The audit iterates
over the defences it is given, so a new defence is one more entry.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mpsl.data import Dataset
from mpsl.data.base import Labeled
from mpsl.errors import ConfigError
from mpsl.privacy.inversion import reconstruct
from mpsl.privacy.labels import infer_labels
from mpsl.privacy.observed_run import Say, Trained, Watch, check_engine, train_observed
from mpsl.runtime.config import RunConfig
from mpsl.runtime.messages import Kind
from mpsl.runtime.setup import load_run_data
from mpsl.split import split_model

NOISE = 0.03  # the noise defence's multiplier, on activations and gradients alike
NOPEEK = 3.0  # the nopeek defence's weight
# The strong defences' multipliers: the weakest that brought the attacks to chance and the
# mean-image baseline on the embedded default (docs/privacy.md, measured trade-off).
ACTIVATION_NOISE = 0.3
GRADIENT_NOISE = 1.0
ACTIVATION_CLIP = 8.0  # digits_cnn's first activations have L2 norms near 8.5
GRADIENT_CLIP = 0.03  # the gradients returned to the last node, near 0.035 per sample

# The RunConfig fields that are defences; every audited defence starts from them all off.
DEFENCE_FIELDS: dict[str, Any] = {
    "activation_clip": None,
    "activation_noise": 0.0,
    "gradient_clip": None,
    "gradient_noise": 0.0,
    "nopeek": 0.0,
    "label_defence": "none",
}


@dataclass(frozen=True)
class Defence:
    """A named way of training a run: the defence fields it sets, and which of them a strength
    (``--defence-strength``) overrides."""

    name: str
    about: str
    changes: dict[str, Any] = field(default_factory=dict)
    strength: tuple[str, ...] = ()  # the fields a strength sets

    def config(self, base: RunConfig, strength: float | None = None) -> RunConfig:
        """``base`` with every defence off, then this one's changes."""
        changes = dict(self.changes)
        if strength is not None:
            if not self.strength:
                raise ConfigError(
                    f"defence '{self.name}' has no strength to set; got {strength}",
                    field="defence_strength",
                )
            changes |= dict.fromkeys(self.strength, strength)
        values = base.model_dump() | DEFENCE_FIELDS | changes
        return RunConfig.from_values(values, f"defence '{self.name}'")


# The defences an audit can iterate over, by name; each new defence is one more entry. The
# strengths are for the embedded default (digits_cnn, batch 16): its first activations have
# L2 norms near 8.5, the gradients returned to the last node near 0.035 (docs/privacy.md).
DEFENCES: dict[str, Defence] = {
    d.name: d
    for d in (
        Defence("none", "no defence: activations and gradients sent as computed"),
        Defence(
            "noise",
            f"activations clipped to {ACTIVATION_CLIP:g} and gradients to {GRADIENT_CLIP:g} per "
            "sample, Gaussian noise of standard deviation noise x clip on both",
            {
                "activation_clip": ACTIVATION_CLIP,
                "activation_noise": NOISE,
                "gradient_clip": GRADIENT_CLIP,
                "gradient_noise": NOISE,
            },
            ("activation_noise", "gradient_noise"),
        ),
        Defence(
            "activation-noise",
            f"activations clipped to {ACTIVATION_CLIP:g} per sample, Gaussian noise of standard "
            f"deviation {ACTIVATION_NOISE:g} x clip (strength: the multiplier)",
            {"activation_clip": ACTIVATION_CLIP, "activation_noise": ACTIVATION_NOISE},
            ("activation_noise",),
        ),
        Defence(
            "gradient-noise",
            f"gradients to the last node clipped to {GRADIENT_CLIP:g} per sample, Gaussian noise "
            f"of standard deviation {GRADIENT_NOISE:g} x clip (strength: the multiplier)",
            {"gradient_clip": GRADIENT_CLIP, "gradient_noise": GRADIENT_NOISE},
            ("gradient_noise",),
        ),
        Defence(
            "strong",
            "activation-noise and gradient-noise together: against both attacks at once",
            {
                "activation_clip": ACTIVATION_CLIP,
                "activation_noise": ACTIVATION_NOISE,
                "gradient_clip": GRADIENT_CLIP,
                "gradient_noise": GRADIENT_NOISE,
            },
        ),
        Defence(
            "nopeek",
            f"NoPeek: {NOPEEK} x dCor(inputs, first activations) added to the data owners' loss",
            {"nopeek": NOPEEK},
            ("nopeek",),
        ),
        Defence(
            "max-norm",
            "max-norm (Li et al.): every returned gradient scaled by a random factor so its "
            "expected norm is the batch's largest",
            {"label_defence": "max-norm"},
        ),
    )
}


@dataclass(frozen=True)
class AttackSettings:
    """What the attacker has and does."""

    nodes: tuple[str, ...] | None = None  # compute nodes whose view is attacked (None: all)
    round: int | None = None  # the round observed (None: the last)
    aux_fraction: float = 0.5  # of the test split, owned by the attacker (never trained on)
    inversion_epochs: int = 30
    known_labels: int = 10  # labelled samples per class the label attacker holds
    seed: int = 0

    def check(self, config: RunConfig, nodes: Sequence[str]) -> None:
        """ConfigError naming the setting that cannot apply to ``config``."""
        if not 0 < self.aux_fraction < 1:
            raise ConfigError(
                f"must be between 0 and 1, got {self.aux_fraction}", field="aux_fraction"
            )
        if self.round is not None and not 0 <= self.round < config.rounds:
            raise ConfigError(
                f"round {self.round} is outside the run's rounds 0..{config.rounds - 1}",
                field="attack_round",
            )
        if self.inversion_epochs < 1:
            raise ConfigError(
                f"must be at least 1, got {self.inversion_epochs}", field="inversion_epochs"
            )
        unknown = [n for n in self.nodes or () if n not in nodes]
        if unknown:
            raise ConfigError(
                f"{', '.join(unknown)} is not a compute node of this run ({', '.join(nodes)})",
                field="attack_nodes",
            )


def aux_split(test: Labeled, fraction: float, seed: int) -> Labeled:
    """The attacker's auxiliary data: a seeded ``fraction`` of the test split."""
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    return test.subset(order[: max(2, round(len(test) * fraction))])


def prefix_of(
    model: nn.Module, cuts: Sequence[int], part: int, weights: dict[str, Any]
) -> nn.Module:
    """The model's parts before ``part``, with ``weights``: what feeds the node hosting ``part``."""
    copied = copy.deepcopy(model)
    copied.load_state_dict(weights)
    return nn.Sequential(*split_model(copied, cuts)[:part])  # type: ignore[arg-type]


def attack(trained: Trained, aux: Labeled, settings: AttackSettings, say: Say) -> dict[str, Any]:
    """Every attack on what ``trained``'s nodes received; the report of one defence."""
    setup, layout = trained.setup, trained.setup.layout
    views = trained.recorder.views(setup.owner_shares(), setup.workload)
    report: dict[str, Any] = {"test_accuracy": trained.result.rounds[-1].accuracy}
    grads = [v for v in views if v.kind is Kind.GRADIENT]
    if grads:
        view = grads[0]
        say(f"label inference at {view.node} from {len(view)} gradients")
        labels = infer_labels(
            view.tensors, view.labels, known=settings.known_labels, seed=settings.seed
        )
        report["label_attack"] = {"node": view.node, **labels.__dict__}
        report["label_attack_accuracy"] = labels.accuracies()
        report["label_chance"] = labels.chance
    recon: dict[str, Any] = {}
    for view in (v for v in views if v.kind is Kind.ACTIVATION):
        say(f"reconstruction at {view.node} from {len(view)} activations")
        part = layout.node_parts[layout.nodes.index(view.node)]
        prefix = prefix_of(setup.model, setup.cuts, part, trained.start_weights)
        got = reconstruct(
            prefix,
            aux,
            view.tensors,
            Labeled(view.inputs, view.labels),
            epochs=settings.inversion_epochs,
            seed=settings.seed,
        )
        recon[view.node] = got.__dict__
    report["reconstruction"] = recon
    report["reconstruction_mse"] = {n: r["mse"] for n, r in recon.items()}
    report["baseline_mse"] = {n: r["baseline_mse"] for n, r in recon.items()}
    return report


def audit(
    config: RunConfig,
    settings: AttackSettings = AttackSettings(),
    defences: Sequence[str] = ("none",),
    *,
    strength: float | None = None,
    dataset: Dataset | None = None,
    engine: str = "cooperative",
    say: Say = lambda _: None,
) -> dict[str, Any]:
    """Train ``config`` under each defence on ``engine`` (cooperative, threads or processes),
    attack what each node saw; the report as plain data."""
    check_engine(engine)
    unknown = [d for d in defences if d not in DEFENCES]
    if unknown:
        raise ConfigError(
            f"'{unknown[0]}' is not a defence; built: {', '.join(DEFENCES)}", field="defences"
        )
    dataset = dataset or load_run_data(config)
    aux = aux_split(dataset.test, settings.aux_fraction, settings.seed)
    attacked = config.rounds - 1 if settings.round is None else settings.round
    watch = Watch(settings.nodes, attacked, lambda nodes: settings.check(config, nodes))
    out: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "engine": engine,
        "attack": {
            "nodes": list(settings.nodes) if settings.nodes else None,
            "observed_round": attacked + 1,
            "aux_fraction": settings.aux_fraction,
            "aux_samples": len(aux),
            "inversion_epochs": settings.inversion_epochs,
            "known_labels_per_class": settings.known_labels,
            "seed": settings.seed,
        },
        "defences": {},
    }
    for name in defences:
        say(f"defence {name}: training")
        defended = DEFENCES[name].config(config, strength if DEFENCES[name].strength else None)
        trained = train_observed(defended, dataset, watch, engine, say)
        out["cuts"] = list(trained.setup.cuts)
        out["nodes"] = list(trained.setup.layout.nodes)
        out["defences"][name] = {
            "about": DEFENCES[name].about,
            "settings": {k: getattr(defended, k) for k in DEFENCE_FIELDS},
            **attack(trained, aux, settings, say),
        }
    return out
