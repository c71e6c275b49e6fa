"""``python -m mpsl``: the same as the ``mpsl`` command."""

from mpsl.cli import main

main()
