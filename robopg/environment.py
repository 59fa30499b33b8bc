"""The training environment of a run, built in one place from its ``[env]`` config.

The trainer, the A3C workers and export (which records observations for the parity check) all build their
vector env here, so every wrapper a run trains with (shaped rewards, observation/action history, ...) is
applied identically everywhere.
"""

from __future__ import annotations

from typing import Any

import envs
from envs.batched.starts import TASK_AIR_GOAL_FRACTION, EpisodeStarts
from envs.history import HistoryStack
from envs.latency_input import VecLatencyInput
from envs.rewards import RewardScales, ShapedReward, StagedReward, StagedScales
from robopg.config import EnvConfig, Reward


def make_training_env(cfg: EnvConfig, num_envs: int, seed: int, progress_steps: int = 0,
                      nthread: int | None = None) -> Any:
    """num_envs environments of ``cfg.task`` with the run's randomisation and wrappers (env i seeded seed + i);
    progress_steps: env steps trained so far (where the training-only start ramps stand); nthread: the batched
    backend's physics threads (None: its default, every core)."""
    env = envs.make_vec(cfg.task, num_envs, seed=seed, randomization=cfg.randomization, backend=cfg.backend,
                        starts=episode_starts(cfg, progress_steps), nthread=nthread)
    if cfg.reward is Reward.SHAPED:
        scales = RewardScales(reach=cfg.reach_scale, goal=cfg.goal_scale, success=cfg.success_scale,
                              reach_offset=cfg.reach_offset)
        env = ShapedReward(env, cfg.task, envs.describe_task(cfg.task).layout, scales)
    elif cfg.reward is Reward.STAGED:
        env = StagedReward(env, cfg.task, envs.describe_task(cfg.task).layout, staged_scales(cfg))
    if cfg.latency_input:  # after the rewards (they read the task's own layout), before the history (stacked with it)
        env = VecLatencyInput(env, envs.privileged_names(env))
    if cfg.obs_history > 1 or cfg.action_history > 0:
        # Outermost: rewards and every other wrapper see raw observations; only the policy sees the stack.
        env = HistoryStack(env, cfg.obs_history, cfg.action_history)
    return env


def staged_scales(cfg: EnvConfig) -> StagedScales:
    """The staged reward's weights and shapes from the run's [env] section."""
    return StagedScales(
        reach=cfg.reach_scale, grasp=cfg.grasp_scale, lift=cfg.lift_scale, place=cfg.place_scale,
        success=cfg.success_scale, reach_offset=cfg.reach_offset, sharpness=cfg.reward_sharpness,
        reached_distance=cfg.reached_distance, place_gate=cfg.place_gate.value, lift_height=cfg.lift_height,
        action_rate=cfg.action_rate_scale, settle_distance=cfg.settle_distance,
    )


def episode_starts(cfg: EnvConfig, progress_steps: int) -> EpisodeStarts:
    """The training-only episode starts after ``progress_steps`` env steps (the in-air goal ramp moves with it)."""
    air = None if cfg.air_goal_fraction < 0 else cfg.air_goal_fraction
    if air is not None and cfg.air_goal_ramp_steps > 0:
        ramp = min(1.0, progress_steps / cfg.air_goal_ramp_steps)
        air = air + ramp * (TASK_AIR_GOAL_FRACTION - air)
    return EpisodeStarts(near_grasp=cfg.near_grasp_fraction, air_goal=air)
