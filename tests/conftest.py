"""Shared test settings: small, deterministic, single-threaded torch."""

import torch

torch.set_num_threads(1)
