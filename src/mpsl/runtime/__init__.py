"""The MP-SL runtime: roles, messages, transports and the in-process engine."""
