"""`python -m ptstub`: the same as the `ptstub` command."""

from ptstub.cli import run

run()
