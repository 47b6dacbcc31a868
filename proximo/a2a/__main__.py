"""``python -m proximo.a2a``: the same as ``proximo-a2a`` (service mode starts it this way)."""

from . import main

main()
