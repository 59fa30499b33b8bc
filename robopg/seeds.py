"""Every seed of a run derives from ``run.seed`` by one of these, so no two streams share a seed by accident.

Environment i of a vector env built with seed s is seeded s + i (envs.make_vec); the offsets below keep the
other streams away from those.
"""

from __future__ import annotations

import torch

# A resumed run cannot restore mid-episode simulator state: it starts fresh episodes from a seed that depends on
# the iteration it resumes at, so resuming the same checkpoint twice gives the same run. A prime stride keeps
# the seeds of consecutive resumes apart by more than any env count.
RESET_STRIDE = 7919
# Export records the observations of its parity check in episodes of their own, not the training ones.
EXPORT_RECORDING_OFFSET = 104_729
# A3C worker w's torch stream (action sampling, policy init): seed * WORKER_STRIDE + w.
WORKER_STRIDE = 1000


def reset_seed(seed: int, iteration: int) -> int:
    """The seed of the vector env's first reset when training (re)starts at ``iteration``."""
    return seed + RESET_STRIDE * iteration


def export_recording_seed(seed: int) -> int:
    """The env seed export records its parity-check observations with."""
    return seed + EXPORT_RECORDING_OFFSET


def worker_seed(seed: int, rank: int) -> int:
    """The torch generator seed of A3C worker ``rank``."""
    return seed * WORKER_STRIDE + rank


def generator(seed: int) -> torch.Generator:
    """A torch generator seeded with ``seed``: every torch draw of robopg goes through one (no global state)."""
    return torch.Generator().manual_seed(seed)
