"""The training environment of a run, built in one place from its ``[env]`` config.

The trainer, the A3C workers and export (which records observations for the parity check) all build their
vector env here, so every wrapper a run trains with (shaped rewards, observation/action history, ...) is
applied identically everywhere.
"""

from __future__ import annotations

from typing import Any

import envs
from envs.history import HistoryStack
from envs.rewards import RewardScales, ShapedReward
from robopg.config import EnvConfig, Reward


def make_training_env(cfg: EnvConfig, num_envs: int, seed: int) -> Any:
    """num_envs environments of ``cfg.task`` with the run's randomisation and wrappers (env i seeded seed + i)."""
    env = envs.make_vec(cfg.task, num_envs, seed=seed, randomization=cfg.randomization, backend=cfg.backend)
    if cfg.reward is Reward.SHAPED:
        scales = RewardScales(reach=cfg.reach_scale, goal=cfg.goal_scale, success=cfg.success_scale,
                              reach_offset=cfg.reach_offset)
        env = ShapedReward(env, cfg.task, envs.describe_task(cfg.task).layout, scales)
    if cfg.obs_history > 1 or cfg.action_history > 0:
        # Outermost: rewards and every other wrapper see raw observations; only the policy sees the stack.
        env = HistoryStack(env, cfg.obs_history, cfg.action_history)
    return env
