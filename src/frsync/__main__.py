"""`python -m frsync` is the `frsync` command."""

from frsync.cli import main

main()
