"""`python -m robopg` is the `robopg` command."""

from robopg.entry import run

run()
