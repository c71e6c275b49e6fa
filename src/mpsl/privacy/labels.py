"""Label inference at the last compute node, from the gradients the data owners send it.

The last compute node receives, per sample, the gradient of the loss with respect to its own
output. For cross-entropy that gradient is ``J^T (softmax - onehot(label))``: its direction
carries the label. Three attacks of an honest-but-curious node (it trains as asked and looks at
what it receives), after Li et al., "Label Leakage and Protection in Two-party Split Learning"
(ICLR 2022):

- ``norm``: the gradient's norm as a score for the positive (minority) class. Binary labels
  only: with more classes a norm says how wrong the model was, not which label was right; None.
- ``direction``: the attacker knows the label of one sample per class (Li et al.: one positive
  sample, and a positive cosine means the same class); each other sample gets the class of the
  known gradient it is most cosine-similar to. With two classes that is Li et al.'s sign rule.
- ``learned``: the attacker knows ``known`` labelled samples per class and fits a logistic
  regression on the unit-length gradients.

Every attack is scored on the same samples (those the attacker did not know), against chance: the
most frequent label's share of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mpsl.errors import ConfigError


@dataclass(frozen=True)
class LabelAttackResult:
    """Accuracy of each attack (None where it does not apply), on ``samples`` unknown samples."""

    samples: int
    known: int  # labelled samples the attacker was given
    chance: float  # accuracy of always guessing the most frequent label
    norm_auc: float | None
    norm_accuracy: float | None
    direction_accuracy: float
    learned_accuracy: float

    def accuracies(self) -> dict[str, float | None]:
        """Accuracy per attack."""
        return {
            "norm": self.norm_accuracy,
            "direction": self.direction_accuracy,
            "learned": self.learned_accuracy,
        }


def known_samples(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Up to ``per_class`` sample indices of each label, drawn with the attacker's ``seed``."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen: list[int] = []
    seen: dict[int, int] = {}
    for i in order.tolist():
        y = int(labels[i])
        if seen.get(y, 0) < per_class:
            seen[y] = seen.get(y, 0) + 1
            chosen.append(i)
    return torch.tensor(chosen, dtype=torch.long)


def infer_labels(
    gradients: torch.Tensor, labels: torch.Tensor, *, known: int = 10, seed: int = 0
) -> LabelAttackResult:
    """Run every label attack on per-sample ``gradients`` (N, ...) against true ``labels`` (N,)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    if labels.dim() != 1:
        raise ConfigError(
            f"label inference needs one class label per sample; got labels of shape "
            f"{list(labels.shape)} (token models are not covered)",
            field="model",
        )
    if known < 1:
        raise ConfigError(
            f"the attacker needs at least 1 known label per class, got {known}",
            field="known_labels",
        )
    g = gradients.reshape(len(gradients), -1).double()
    unit = torch.nn.functional.normalize(g, dim=1)
    classes = sorted(int(c) for c in labels.unique())
    picked = known_samples(labels, known, seed)
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[picked] = False
    y_rest = labels[rest]
    if len(y_rest) == 0 or len(classes) < 2:
        raise ConfigError(
            f"{len(labels)} observed samples of {len(classes)} label(s) leave nothing to attack; "
            "observe more batches or rounds",
            field="batches_per_epoch",
        )
    counts = torch.bincount(y_rest)
    chance = float(counts.max()) / len(y_rest)

    # direction: one known gradient per class, the first drawn of each
    refs = {int(labels[i]): i for i in reversed(picked.tolist())}
    ref_labels = torch.tensor(sorted(refs))
    ref_vectors = unit[[refs[int(c)] for c in ref_labels]]
    if len(classes) == 2:
        positive = int(ref_labels[-1])
        same = unit[rest] @ unit[refs[positive]] > 0  # Li et al.: a positive cosine, same class
        guess = torch.where(same, positive, int(ref_labels[0]))
    else:
        guess = ref_labels[(unit[rest] @ ref_vectors.T).argmax(dim=1)]
    direction = float((guess == y_rest).double().mean())

    fit = LogisticRegression(max_iter=1000)
    fit.fit(unit[picked].numpy(), labels[picked].numpy())
    learned = float(np.mean(fit.predict(unit[rest].numpy()) == y_rest.numpy()))

    norm_auc = norm_accuracy = None
    if len(classes) == 2:
        norms = g[rest].norm(dim=1).numpy()
        minority = classes[int(torch.bincount(labels)[classes].argmin())]
        truth = (y_rest == minority).numpy()
        norm_auc = float(roc_auc_score(truth, norms))
        # the threshold halfway between the known samples' mean norms of the two classes
        known_norms = g[picked].norm(dim=1)
        is_min = labels[picked] == minority
        cut = float(known_norms[is_min].mean() + known_norms[~is_min].mean()) / 2
        norm_accuracy = float(np.mean((norms > cut) == truth))
    return LabelAttackResult(
        samples=len(y_rest),
        known=len(picked),
        chance=chance,
        norm_auc=norm_auc,
        norm_accuracy=norm_accuracy,
        direction_accuracy=direction,
        learned_accuracy=learned,
    )
