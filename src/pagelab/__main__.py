"""``python -m pagelab``."""

from pagelab.cli import main

main()
