"""``python -m proximo``: the same as the ``proximo`` command."""

from .cli import main

main()
