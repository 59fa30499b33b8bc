"""Algorithms: each file holds its loss and ``update()``; collection, storage and GAE are shared.

An algorithm takes the policy and its config section, and exposes
``update(storage, progress, generator) -> dict[str, float]`` plus ``state_dict`` / ``load_state_dict``.
"""

from robopg.algos.ppo import PPO

ALGORITHMS = {PPO.name: PPO}

__all__ = ["ALGORITHMS", "PPO"]
