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


def rank_seed(seed: int, rank: int) -> int:
    """Under torchrun: the seed of global rank ``rank``'s torch generators and ADR pin stream (rank 0: ``seed``).
    Global, not local, so the nodes of a multi-node run draw different streams."""
    return seed + rank


def rank_env_seed(seed: int, rank: int, num_envs: int) -> int:
    """Under torchrun: the seed of rank ``rank``'s vector env of ``num_envs`` environments. Env i of rank r gets
    seed + r * num_envs + i, so no two environments of the run share a seed (``rank_seed`` would give env i of
    rank r the seed of env i + r of rank 0); rank 0's are the single-process run's."""
    return seed + rank * num_envs


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
