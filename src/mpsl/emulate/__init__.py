"""Emulation and calibration: the real runtime driven by the estimator's cost model (above both)."""
