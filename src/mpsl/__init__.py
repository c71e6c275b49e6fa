"""MP-SL: multihop parallel split learning.

``mpsl.train`` trains a model from Python (docs/api.md); ``mpsl`` on the command line does the same
and more (docs/run.md).
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["train"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the command line imports this package and need not load torch for it.
    if name == "train":
        from mpsl.api import train

        return train
    raise AttributeError(f"module 'mpsl' has no attribute '{name}'")
