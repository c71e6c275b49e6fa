"""Profiles: per-layer time and memory; measuring them and importing the reference tables."""

from mpsl.profile.format import LayerProfile, Profile, Timing

__all__ = ["LayerProfile", "Profile", "Timing"]
