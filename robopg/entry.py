"""The `robopg` command's entry point (console script and `python -m robopg`).

Two things happen around ``robopg.cli.main`` here rather than inside it: Ctrl-C while the libraries load (the
first ~0.5 s, before ``main`` can catch anything) gives the same one-line message as later in start-up instead of
a traceback, and a torchrun rank ends through ``robopg.distributed.end_process`` (without interpreter
finalisation, see there)."""

from __future__ import annotations

import sys
from typing import NoReturn


def run() -> NoReturn:
    try:
        from robopg.cli import main
    except KeyboardInterrupt:  # nothing has started or been written yet
        print("robopg: interrupted (SIGINT) during start-up, before anything was written. Run the same command "
              "again", file=sys.stderr)
        raise SystemExit(130) from None
    code = main()
    if "robopg.distributed" in sys.modules:  # imported by training only
        sys.modules["robopg.distributed"].end_process(code)
    raise SystemExit(code)
