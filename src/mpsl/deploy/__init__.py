"""Networked deployment: every role its own process, over ZeroMQ with CURVE."""
