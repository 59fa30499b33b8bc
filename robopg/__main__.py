"""`python -m robopg` is the `robopg` command."""

from robopg.cli import main

raise SystemExit(main())
