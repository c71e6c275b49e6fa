"""One error hierarchy for MP-SL.

Every message says what was expected, what was found, and how to fix it. The CLI turns an
``MpslError`` into a one-line message and a non-zero exit; anything else is a bug.
"""

from __future__ import annotations


class MpslError(Exception):
    """Base class of every error MP-SL raises on purpose."""


class ConfigError(MpslError):
    """A configuration value (flag, TOML field, JSON field) is invalid."""

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None):
        where = ""
        if source:
            where += f"{source}: "
        if field:
            where += f"field '{field}': "
        super().__init__(where + message)
        self.field = field
        self.source = source


class ModelError(MpslError):
    """An unknown model, or a model that cannot be built for the given input."""


class CutError(MpslError):
    """A cut list does not describe valid parts of a model."""


class DatasetError(MpslError):
    """A dataset is missing, malformed, or cannot be partitioned as asked."""


class FormatError(MpslError):
    """A file on disk (profile, cluster, plan, scenario) does not match its format."""


class InfeasibleError(MpslError):
    """No plan or schedule satisfies the constraints."""


class RuntimeFailure(MpslError):
    """A role failed while training; carries node, round and batch where known."""


class ProtocolError(MpslError):
    """A message on the wire is malformed, truncated, oversized or unexpected."""


class TransportTimeout(MpslError):
    """Nothing arrived for an endpoint within the time it was given."""
