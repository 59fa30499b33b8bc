"""Algorithms: each file holds its loss and ``update()``; collection, storage and normalisation are shared.

Every algorithm is built as ``ALGORITHMS[algo](policy, cfg.algorithm)`` and meets the ``Algorithm`` contract,
the only thing the runners (robopg/runners/) call. What the gradient-descent ones share (one optimiser step,
epochs of minibatches) is in robopg/algos/optimization.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3C
from robopg.algos.ppo import PPO
from robopg.algos.ppo_kl import PPOKL
from robopg.algos.reinforce import Reinforce
from robopg.algos.trpo import TRPO
from robopg.config import Algo
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage


class Algorithm(Protocol):
    """What a runner needs of an algorithm: an update from one rollout, and its state for checkpoints."""

    def update(self, storage: RolloutStorage, progress: float, generator: torch.Generator) -> dict[str, float]:
        """Learn from the rollout in ``storage`` (the algorithm computes its own advantage estimator from it).

        progress: fraction of the run's steps done, in [0, 1] (learning-rate schedules). generator: every random
        draw of the update (minibatch shuffles). Returns the metrics to log (name -> value)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Optimiser state and any adapted coefficient (learning rate, beta), for checkpoints."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


ALGORITHMS: dict[Algo, Callable[[GaussianActorCritic, Any], Algorithm]] = {
    Algo.PPO: PPO,
    Algo.PPO_KL: PPOKL,
    Algo.TRPO: TRPO,
    Algo.A2C: A2C,
    Algo.A3C: A3C,
    Algo.REINFORCE: Reinforce,
}


__all__ = ["A2C", "A3C", "ALGORITHMS", "PPO", "PPOKL", "TRPO", "Algorithm", "Reinforce"]
