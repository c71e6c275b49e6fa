"""Estimating round time and memory before deployment: closed form and simulation."""
