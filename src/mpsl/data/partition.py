"""Partitioning a training set across K data owners: IID or Dirichlet label skew."""

from __future__ import annotations

import numpy as np

from mpsl.errors import DatasetError

MAX_DRAWS = 1000


def iid(num_samples: int, owners: int, seed: int) -> list[np.ndarray]:
    """A random permutation cut into ``owners`` near-equal shares."""
    _check(num_samples, owners)
    order = np.random.default_rng(seed).permutation(num_samples)
    return [np.sort(share) for share in np.array_split(order, owners)]


def dirichlet(labels: np.ndarray, owners: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Label skew: each class is shared among owners in proportions drawn from Dir(alpha).

    Draws again (deterministically, from the same seeded stream) until no owner is empty.
    """
    labels = np.asarray(labels)
    _check(len(labels), owners)
    if alpha <= 0:
        raise DatasetError(f"Dirichlet alpha must be positive; got {alpha}")
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for _ in range(MAX_DRAWS):
        shares: list[list[np.ndarray]] = [[] for _ in range(owners)]
        for idx in by_class:
            idx = rng.permutation(idx)
            cut_points = (np.cumsum(rng.dirichlet(np.full(owners, alpha))) * len(idx)).astype(int)
            for owner, piece in enumerate(np.split(idx, cut_points[:-1])):
                shares[owner].append(piece)
        result = [np.sort(np.concatenate(s)) for s in shares]
        if min(len(r) for r in result) > 0:
            return result
    raise DatasetError(
        f"could not give each of {owners} data owners at least one sample with Dirichlet "
        f"alpha={alpha} in {MAX_DRAWS} draws; raise alpha or use fewer data owners"
    )


def partition(
    labels: np.ndarray, owners: int, scheme: str = "iid", alpha: float = 0.5, seed: int = 0
) -> list[np.ndarray]:
    """Indices of each data owner's training samples under ``scheme`` ('iid' or 'dirichlet')."""
    labels = np.asarray(labels)
    if labels.ndim > 1:  # token data: skew by each sequence's first target
        labels = labels[:, 0]
    if scheme == "iid":
        return iid(len(labels), owners, seed)
    if scheme == "dirichlet":
        return dirichlet(labels, owners, alpha, seed)
    raise DatasetError(f"unknown partitioning '{scheme}'; choose 'iid' or 'dirichlet'")


def _check(num_samples: int, owners: int) -> None:
    if owners < 1:
        raise DatasetError(f"need at least 1 data owner; got {owners}")
    if owners > num_samples:
        raise DatasetError(
            f"{owners} data owners but only {num_samples} training samples: every data owner "
            f"needs at least one; use at most {num_samples} data owners"
        )
