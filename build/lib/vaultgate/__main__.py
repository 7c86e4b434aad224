"""``python -m vaultgate`` runs the command line."""

from vaultgate.cli import main

main()
