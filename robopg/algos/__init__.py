"""Algorithms: each file holds its loss and ``update()``; collection, storage and normalisation are shared.

An algorithm takes the policy and its config section, and exposes
``update(storage, progress, generator) -> dict[str, float]`` (it computes its own advantage estimator from
the rollout) plus ``state_dict`` / ``load_state_dict`` for checkpoints.
"""

from robopg.algos.a2c import A2C
from robopg.algos.a3c import A3C
from robopg.algos.ppo import PPO
from robopg.algos.ppo_kl import PPOKL
from robopg.algos.reinforce import Reinforce
from robopg.algos.trpo import TRPO
from robopg.config import Algo

ALGORITHMS = {
    Algo.PPO: PPO,
    Algo.PPO_KL: PPOKL,
    Algo.TRPO: TRPO,
    Algo.A2C: A2C,
    Algo.A3C: A3C,
    Algo.REINFORCE: Reinforce,
}

__all__ = ["A2C", "A3C", "ALGORITHMS", "PPO", "PPOKL", "TRPO", "Reinforce"]
