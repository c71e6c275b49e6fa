"""Privacy, measured: what compute nodes see in a run, and how much an attacker learns from it."""
