"""`python -m waypost` is the `waypost` command."""

from waypost.cli.main import main

main()
