"""``robopg train --nproc-per-node N ...``: the same command under torchrun on this machine, so a user need not
spell out ``torchrun --standalone --nproc_per_node N -m robopg train ...`` (docs/distributed.md).

torchrun replaces this process (exec): its signals, output and exit status are those of running it by hand.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

FLAG = "--nproc-per-node"


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command line for ``robopg <argv>`` on ``nproc`` ranks of this machine; argv without its
    --nproc-per-node (argparse also took an unambiguous prefix of it, such as --nproc, and the =N form)."""
    rest: list[str] = []
    skip_value = False
    for token in argv:
        if skip_value:
            skip_value = False
            continue
        name = token.split("=", 1)[0]
        if name.startswith("--np") and FLAG.startswith(name):
            skip_value = "=" not in token
            continue
        rest.append(token)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "robopg", *rest]


def exec_torchrun(nproc: int, argv: list[str]) -> NoReturn:
    """Replace this process by torchrun running ``robopg <argv>`` on ``nproc`` ranks."""
    if nproc < 1:
        raise ValueError(f"{FLAG} {nproc}: a run needs at least one rank. Fix: {FLAG} 2, say")
    if "LOCAL_RANK" in os.environ:  # set by torchrun for its workers
        raise ValueError(f"{FLAG} starts torchrun, and this command already runs under it. Fix: drop {FLAG}")
    command = torchrun_command(nproc, argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
