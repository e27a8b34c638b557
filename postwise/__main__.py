"""``python -m postwise`` is the ``postwise`` command."""

from postwise.cli import main

main()
