"""scikit-learn's bundled 8x8 digits (1,797 samples), with a fixed seeded split."""

from __future__ import annotations

import numpy as np
import torch

from mpsl.data.base import Dataset, Labeled

SPLIT_SEED = 20240201
TEST_FRACTION = 0.2


def load_digits() -> Dataset:
    """Digits as 1x8x8 float tensors scaled to [0, 1]; 80/20 train/test split, always the same."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.from_numpy(np.random.default_rng(SPLIT_SEED).permutation(len(y)))
    n_test = round(len(y) * TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", Labeled(x[train], y[train]), Labeled(x[test], y[test]), 10)
