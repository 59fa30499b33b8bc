"""`DomainRandomization`: per-episode dynamics, observation noise/bias, action noise and action latency.

It wraps an env whose observations are already flat (`FlattenObservation`). Rewards and success come from
the true simulator state; the wrapper only changes what the agent sees and what the simulator executes.
With an empty spec it is an exact pass-through.

`RandomizationStreams` holds one env's seeded draws (episode values, observation bias, per-step noise). The
wrapper and the batched backend (envs/batched/) both use it, so the same seed gives the same values and the
same noise sequence on either backend.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.dynamics import ModelDynamics
from envs.layout import ObservationLayout
from envs.randomization import Kind, Mode, RandomizationSpec

# Mixed with the reset seed so this wrapper's streams differ from the env's own np_random stream.
SEED_SALT = 0x5EED_D0
UNCORRUPTED_FIELDS = ("desired_goal",)  # the commanded goal is known exactly on the robot


class RandomizationStreams:
    """One env's randomisation draws from two seeded streams: per-episode values and per-step noise, so episode
    values do not depend on how many steps earlier episodes lasted.

    spec: the parameters this env applies (inactive ones already removed). obs_mask: (obs_dim,) float32, 0 on
    fields never corrupted. seed: seeds the streams now (None: OS entropy until `new_episode` gets a seed).
    After `new_episode`: values, obs_noise_scale (obs_dim,), obs_bias (obs_dim,), corrupt_obs,
    action_noise_std, latency.
    """

    def __init__(self, spec: RandomizationSpec, obs_mask: np.ndarray, seed: int | None = None):
        self.spec = spec
        self.obs_mask = obs_mask
        self._seed(seed)
        self.values: dict[str, float] = {}
        self.obs_noise_scale = np.zeros_like(obs_mask)  # std * mask
        self.obs_bias = np.zeros_like(obs_mask)
        self.corrupt_obs = False
        self.action_noise_std = 0.0
        self.latency = 0

    def _seed(self, seed: int | None) -> None:
        episode_seq, step_seq = np.random.SeedSequence(None if seed is None else [seed, SEED_SALT]).spawn(2)
        self._episode_rng = np.random.default_rng(episode_seq)
        self._step_rng = np.random.default_rng(step_seq)

    def new_episode(self, seed: int | None = None) -> dict[str, float]:
        """Reseed when given a seed, then draw this episode's values (spec order) and observation bias."""
        if seed is not None:
            self._seed(seed)
        values = self.spec.sample(self._episode_rng)
        self.values = values
        obs_std = values.get("observation_noise", 0.0)
        bias_std = values.get("observation_bias", 0.0)
        self.obs_noise_scale[:] = obs_std * self.obs_mask
        if "observation_bias" in values:
            self.obs_bias[:] = self._episode_rng.normal(0.0, bias_std, self.obs_mask.shape[0]) * self.obs_mask
        self.corrupt_obs = obs_std > 0 or bias_std > 0
        self.action_noise_std = values.get("action_noise", 0.0)
        self.latency = int(values.get("action_latency", 0))
        return values

    def action_noise(self, shape: tuple[int, ...]) -> np.ndarray:
        """Unit Gaussian float32 draws for one step's action (scale by action_noise_std)."""
        return self._step_rng.standard_normal(shape, dtype=np.float32)

    def observation_noise(self, out: np.ndarray) -> np.ndarray:
        """Fill out (obs_dim,) float32 with this step's noise: N(0, 1) * obs_noise_scale."""
        self._step_rng.standard_normal(dtype=np.float32, out=out)
        out *= self.obs_noise_scale
        return out


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
        self.dynamics = ModelDynamics.for_env(env, dynamics_modes(spec))
        self.inactive_parameters = self.dynamics.inactive
        self.active_parameters = tuple(n for n in spec.names if n not in self.inactive_parameters)
        self.current_values: dict[str, float] = {}

        self._action_low = env.action_space.low
        self._action_high = env.action_space.high
        self._action_dtype = env.action_space.dtype
        self._action_mid = action_midpoint(env.action_space)

        self._pending_seed = seed
        self.streams = RandomizationStreams(active_spec(spec, self.inactive_parameters), obs_mask(layout), seed)
        self._obs_noise_buf = np.zeros(layout.dim, dtype=np.float32)
        self._queue = np.zeros((0, *env.action_space.shape), dtype=self._action_dtype)
        self._head = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None

        values = self.streams.new_episode(seed)
        self.current_values = values
        self.dynamics.apply({n: v for n, v in values.items() if n in self.dynamics.targets})
        # Before the agent has acted, the robot executes the neutral (midpoint) command.
        self._queue = np.tile(self._action_mid, (self.streams.latency, 1))
        self._head = 0

        obs, info = self.env.reset(seed=seed, options=options)
        info["randomization"] = dict(values)
        return self._observe(obs), info

    def step(self, action: np.ndarray):
        streams = self.streams
        if streams.action_noise_std > 0:
            noise = streams.action_noise(self._action_mid.shape)
            action = np.clip(
                np.asarray(action, dtype=self._action_dtype) + streams.action_noise_std * noise,
                self._action_low,
                self._action_high,
            ).astype(self._action_dtype)
        if streams.latency > 0:
            # Ring buffer of the last `latency` actions: execute the oldest, store the newest in its place.
            executed = self._queue[self._head].copy()
            self._queue[self._head] = action
            self._head = (self._head + 1) % streams.latency
            action = executed
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        """obs + per-episode bias + per-step N(0, std) noise, in place (obs is a fresh array)."""
        if self.streams.corrupt_obs:
            obs += self.streams.observation_noise(self._obs_noise_buf)
            obs += self.streams.obs_bias
        return obs


def dynamics_modes(spec: RandomizationSpec) -> dict[str, Mode]:
    """name -> Mode of every dynamics parameter of the spec (what ModelDynamics applies)."""
    return {p.name: p.mode for p in spec.parameters if p.kind is Kind.DYNAMICS}


def active_spec(spec: RandomizationSpec, inactive: tuple[str, ...]) -> RandomizationSpec:
    """The spec without the parameters an env has no target for (never sampled, applied or reported)."""
    return RandomizationSpec(tuple(p for p in spec.parameters if p.name not in inactive), spec.source)


def obs_mask(layout: ObservationLayout) -> np.ndarray:
    """(layout.dim,) float32: 1 where observation noise and bias apply, 0 on UNCORRUPTED_FIELDS."""
    mask = np.ones(layout.dim, dtype=np.float32)
    for name in UNCORRUPTED_FIELDS:
        if name in layout.slices:
            mask[layout.slices[name]] = 0.0
    return mask


def action_midpoint(space: gym.spaces.Box) -> np.ndarray:
    """The neutral command a latency queue starts from: the midpoint of finite bounds, 0 elsewhere."""
    low, high = space.low, space.high
    return np.where(np.isfinite(low) & np.isfinite(high), (low + high) / 2, 0.0).astype(space.dtype)
