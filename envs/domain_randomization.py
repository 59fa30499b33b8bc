"""`DomainRandomization`: per-episode dynamics, observation noise/bias, action noise and action latency.

It wraps an env whose observations are already flat (`FlattenObservation`). Rewards and success come from
the true simulator state; the wrapper only changes what the agent sees and what the simulator executes.
With an empty spec it is an exact pass-through.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.dynamics import ModelDynamics
from envs.layout import ObservationLayout
from envs.randomization import Kind, RandomizationSpec

# Mixed with the reset seed so this wrapper's streams differ from the env's own np_random stream.
SEED_SALT = 0x5EED_D0
UNCORRUPTED_FIELDS = ("desired_goal",)  # the commanded goal is known exactly on the robot


class DomainRandomization(gym.Wrapper):
    """Samples every spec parameter once per episode (at reset) from a generator seeded by reset(seed=s).

    env: flat-observation env, observations of shape (layout.dim,) float32, freshly allocated each step.
    seed: used for the first reset when that reset gets no seed, so sub-envs built with a seed reproduce.
    Attributes: current_values (active parameter -> value this episode), active_parameters,
    inactive_parameters (spec parameters this env has no target for; never applied or reported).
    """

    def __init__(
        self, env: gym.Env, spec: RandomizationSpec, layout: ObservationLayout, seed: int | None = None
    ):
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"DomainRandomization needs a Box action space, got {env.action_space}")
        self.randomization_spec = spec
        self.layout = layout
        self.dynamics = ModelDynamics(
            env, {p.name: p.mode for p in spec.parameters if p.kind is Kind.DYNAMICS}
        )
        self.inactive_parameters = self.dynamics.inactive
        self._episode_spec = RandomizationSpec(
            tuple(p for p in spec.parameters if p.name not in self.inactive_parameters), spec.source
        )
        self.active_parameters = self._episode_spec.names
        self.current_values: dict[str, float] = {}

        self._obs_mask = np.ones(layout.dim, dtype=np.float32)
        for name in UNCORRUPTED_FIELDS:
            if name in layout.slices:
                self._obs_mask[layout.slices[name]] = 0.0
        self._action_low = env.action_space.low
        self._action_high = env.action_space.high
        self._action_dtype = env.action_space.dtype
        self._action_mid = np.where(
            np.isfinite(self._action_low) & np.isfinite(self._action_high),
            (self._action_low + self._action_high) / 2,
            0.0,
        ).astype(self._action_dtype)

        self._pending_seed = seed
        self._seed_streams(seed)
        # Per-episode state, set in reset().
        self._obs_noise_scale = np.zeros(layout.dim, dtype=np.float32)  # std * mask
        self._obs_noise_buf = np.zeros(layout.dim, dtype=np.float32)
        self._obs_bias = np.zeros(layout.dim, dtype=np.float32)
        self._corrupt_obs = False
        self._action_noise_std = 0.0
        self._latency = 0
        self._queue = np.zeros((0, *env.action_space.shape), dtype=self._action_dtype)
        self._head = 0

    def _seed_streams(self, seed: int | None) -> None:
        """Two streams: per-episode parameter draws and per-step noise, so episode values do not depend on
        how many steps earlier episodes lasted."""
        episode_seq, step_seq = np.random.SeedSequence(None if seed is None else [seed, SEED_SALT]).spawn(2)
        self._episode_rng = np.random.default_rng(episode_seq)
        self._step_rng = np.random.default_rng(step_seq)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        if seed is not None:
            self._seed_streams(seed)

        values = self._episode_spec.sample(self._episode_rng)
        self.current_values = values
        self.dynamics.apply({n: v for n, v in values.items() if n in self.dynamics.targets})

        obs_std = values.get("observation_noise", 0.0)
        bias_std = values.get("observation_bias", 0.0)
        self._obs_noise_scale[:] = obs_std * self._obs_mask
        if "observation_bias" in values:
            self._obs_bias[:] = self._episode_rng.normal(0.0, bias_std, self.layout.dim) * self._obs_mask
        self._corrupt_obs = obs_std > 0 or bias_std > 0
        self._action_noise_std = values.get("action_noise", 0.0)
        self._latency = int(values.get("action_latency", 0))
        # Before the agent has acted, the robot executes the neutral (midpoint) command.
        self._queue = np.tile(self._action_mid, (self._latency, 1))
        self._head = 0

        obs, info = self.env.reset(seed=seed, options=options)
        info["randomization"] = dict(values)
        return self._observe(obs), info

    def step(self, action: np.ndarray):
        if self._action_noise_std > 0:
            noise = self._step_rng.standard_normal(self._action_mid.shape, dtype=np.float32)
            action = np.clip(
                np.asarray(action, dtype=self._action_dtype) + self._action_noise_std * noise,
                self._action_low,
                self._action_high,
            ).astype(self._action_dtype)
        if self._latency > 0:
            # Ring buffer of the last `latency` actions: execute the oldest, store the newest in its place.
            executed = self._queue[self._head].copy()
            self._queue[self._head] = action
            self._head = (self._head + 1) % self._latency
            action = executed
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        """obs + per-episode bias + per-step N(0, std) noise, in place (obs is a fresh array)."""
        if self._corrupt_obs:
            self._step_rng.standard_normal(dtype=np.float32, out=self._obs_noise_buf)
            self._obs_noise_buf *= self._obs_noise_scale
            obs += self._obs_noise_buf
            obs += self._obs_bias
        return obs
