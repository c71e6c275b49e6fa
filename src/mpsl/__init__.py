"""MP-SL: multihop parallel split learning."""

__version__ = "0.1.0"
