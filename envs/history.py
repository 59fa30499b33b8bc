"""`HistoryStack`: the policy sees the last K observations and the last M actions, not just the current observation.

A feed-forward policy with a short history can infer what a single observation hides (velocities, latency,
the dynamics of this episode's randomised robot) and transfers better (Peng et al. 2018, "Sim-to-Real Transfer of
Robotic Control with Dynamics Randomization"). The stacked vector, newest last in each part, is

    concat(obs_{t-K+1}, ..., obs_t, a_{t-M}, ..., a_{t-1})        float32, K * obs_dim + M * act_dim values

where a are the actions passed to ``step`` (robot units, clipped to the action space bounds). At a reset, and at
each environment's autoreset, the observation history is the reset observation repeated K times and the action
history the action space's midpoint (the neutral command) repeated M times.

The robot computes the same vector from one raw observation per tick (``policies_export.runtime.Controller``);
a test replays a training episode through it and checks the two agree exactly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from envs.corruption import action_midpoint


class HistoryStack(gym.vector.VectorWrapper):
    """Observations (N, obs_dim) -> stacked (N, K * obs_dim + M * act_dim) float32, on any vector backend.

    env: a vector env with SAME_STEP autoreset (``envs.make_vec``) and flat Box observations (N, obs_dim).
    obs_history: K >= 1, observations in the stack. action_history: M >= 0, actions in the stack.
    At an episode end ``infos["final_obs"][i]`` becomes the ended episode's stacked vector (its history and the
    true final observation), so a time-out bootstraps from what the policy would have seen; the returned obs is
    the new episode's stack. Every other info passes through untouched. K = 1, M = 0 gives the observations
    unchanged; ``robopg/environment.py`` does not wrap then.
    """

    def __init__(self, env: gym.vector.VectorEnv, obs_history: int, action_history: int) -> None:
        super().__init__(env)
        if obs_history < 1:
            raise ValueError(f"obs_history must be >= 1 (1: the current observation only), got {obs_history}")
        if action_history < 0:
            raise ValueError(f"action_history must be >= 0 (0: no past actions), got {action_history}")
        obs_space, act_space = env.single_observation_space, env.single_action_space
        if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
            raise TypeError(f"HistoryStack needs flat Box observations, got {obs_space}; flatten them first")
        if not (isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1):
            raise TypeError(f"HistoryStack needs a flat Box action space, got {act_space}")
        self.obs_history, self.action_history = obs_history, action_history
        self.obs_dim, self.act_dim = obs_space.shape[0], act_space.shape[0]
        self.action_low = act_space.low.astype(np.float32)
        self.action_high = act_space.high.astype(np.float32)
        self.neutral_action = action_midpoint(act_space).astype(np.float32)

        stack_obs = obs_history * self.obs_dim
        self.stack_dim = stack_obs + action_history * self.act_dim
        self._obs_cols = slice(0, stack_obs)
        self._act_cols = slice(stack_obs, self.stack_dim)
        self.single_observation_space = gym.spaces.Box(
            np.concatenate([np.tile(obs_space.low, obs_history), np.tile(act_space.low, action_history)]),
            np.concatenate([np.tile(obs_space.high, obs_history), np.tile(act_space.high, action_history)]),
            dtype=np.float32,
        )
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)
        self._stack = np.zeros((env.num_envs, self.stack_dim), dtype=np.float32)
        """Row i: env i's current stacked vector (oldest frame first in each part)."""

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset as the wrapped env does; the reset envs' histories start over. Returns (stack (N, D), infos)."""
        mask = (options or {}).get("reset_mask")  # read first: SyncVectorEnv pops it from options
        obs, infos = self.env.reset(seed=seed, options=options)
        rows = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        self._start(rows, obs[rows])
        return self._stack.copy(), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """actions: (N, act_dim), passed on as given. Returns (stack (N, D), rewards, terminated, truncated, infos)."""
        sent = np.clip(np.asarray(actions, dtype=np.float32).reshape(self.num_envs, self.act_dim),
                       self.action_low, self.action_high)
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        _shift_in(self._stack[:, self._act_cols], sent)
        _shift_in(self._stack[:, self._obs_cols], obs)
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            final_obs = np.full(self.num_envs, None, dtype=object)
            newest = slice(self._obs_cols.stop - self.obs_dim, self._obs_cols.stop)
            for i in done:
                # obs[i] is already the next episode's reset observation; the ended episode saw final_obs[i].
                self._stack[i, newest] = infos["final_obs"][i]
                final_obs[i] = self._stack[i].copy()
            self._start(done, obs[done])
            infos = {**infos, "final_obs": final_obs}
        return self._stack.copy(), rewards, terminated, truncated, infos

    def _start(self, rows: np.ndarray, obs: np.ndarray) -> None:
        """Fresh histories for envs ``rows``: obs (len(rows), obs_dim) repeated K times, the neutral action M times."""
        self._stack[rows, self._obs_cols] = np.tile(obs, (1, self.obs_history))
        self._stack[rows, self._act_cols] = np.tile(self.neutral_action, self.action_history)


def _shift_in(frames: np.ndarray, newest: np.ndarray) -> None:
    """frames: (N, F * w) view, F frames of width w, oldest first; drop the oldest, append newest (N, w)."""
    width = newest.shape[1]
    if frames.shape[1] == 0:
        return
    frames[:, :-width] = frames[:, width:]
    frames[:, -width:] = newest
