"""The training environment of a run, built in one place from its ``[env]`` config.

The trainer, the A3C workers and export (which records observations for the parity check) all build their
vector env here, so every wrapper a run trains with (shaped rewards, observation/action history, ...) is
applied identically everywhere.
"""

from __future__ import annotations

from typing import Any

import envs
from robopg.config import EnvConfig


def make_training_env(cfg: EnvConfig, num_envs: int, seed: int) -> Any:
    """num_envs environments of ``cfg.task`` with the run's randomisation and wrappers (env i seeded seed + i)."""
    return envs.make_vec(cfg.task, num_envs, seed=seed, randomization=cfg.randomization, backend=cfg.backend.value)
