"""A run's directory on disk: per-round checkpoints, the trained model file, the streamed task log.

Everything is written so that a killed process loses at most the round in progress: files are
written under a temporary name and renamed into place (``atomic.py``).
"""

from mpsl.store.model_file import load_trained

__all__ = ["load_trained"]
