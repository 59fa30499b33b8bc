"""`python -m robopg` is the `robopg` command."""

import sys

from robopg.cli import main

code = main()
if "robopg.distributed" in sys.modules:  # a torchrun rank leaves without interpreter finalisation (see there)
    sys.modules["robopg.distributed"].end_process(code)
raise SystemExit(code)
