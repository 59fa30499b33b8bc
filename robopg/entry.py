"""The `robopg` command's entry point (console script and `python -m robopg`).

Two things happen around ``robopg.cli.main`` here rather than inside it: Ctrl-C while the libraries load (the
first ~0.5 s, before ``main`` can catch anything) is held until they have loaded and then gives the same one-line
message as later in start-up instead of a traceback, and a torchrun rank ends through ``robopg.distributed.end_process`` (without interpreter
finalisation, see there)."""

from __future__ import annotations

import signal
import sys
from typing import NoReturn


def run() -> NoReturn:
    # Ctrl-C is held while the libraries load, not raised: a KeyboardInterrupt that lands inside a C extension's own
    # import (numpy importing datetime, say) comes out as an ImportError with a traceback, not as the interrupt.
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        from robopg.cli import main
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:  # nothing has started or been written yet
        print("robopg: interrupted (SIGINT) during start-up, before anything was written. Run the same command "
              "again", file=sys.stderr)
        raise SystemExit(130)
    code = main()
    if "robopg.distributed" in sys.modules:  # imported by training only
        sys.modules["robopg.distributed"].end_process(code)
    raise SystemExit(code)
