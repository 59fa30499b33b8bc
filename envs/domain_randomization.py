"""`DomainRandomization`: per-episode dynamics and perturbations, observation noise/bias, action noise and
action latency; privileged information (clean observations, this episode's values) for an asymmetric critic.

It wraps an env whose observations are already flat (`FlattenObservation`). Rewards and success come from
the true simulator state; the wrapper only changes what the agent sees and what the simulator executes.
With an empty spec its observations, rewards and episodes are exactly the env's.

`RandomizationStreams` holds one env's seeded draws (episode values, observation bias, gravity offset,
per-step noise, step delays, object kicks). The wrapper and the batched backend (envs/batched/) both use it,
so the same seed gives the same values and the same noise sequence on either backend.

Every reset and step info carries `clean_obs` ((obs_dim,) float32, the observation before noise and bias)
and `privileged_params` ((P,) float32, this episode's values of `active_parameters`, in that order).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from envs.dynamics import ModelDynamics
from envs.layout import ObservationLayout
from envs.randomization import Kind, Mode, RandomizationSpec, check_pairs, load_spec

# Mixed with the reset seed so this wrapper's streams differ from the env's own np_random stream.
SEED_SALT = 0x5EED_D0
UNCORRUPTED_FIELDS = ("desired_goal",)  # the commanded goal is known exactly on the robot
CLEAN_OBS, PRIVILEGED_PARAMS = "clean_obs", "privileged_params"  # info keys
ONLY_ENV = np.zeros(1, dtype=np.intp)  # the wrapper's row of its one-env RunningMoments


class RandomizationStreams:
    """One env's randomisation draws from two seeded streams: per-episode values and per-step noise, so episode
    values do not depend on how many steps earlier episodes lasted.

    spec: the parameters this env applies (inactive ones already removed). obs_mask: (obs_dim,) float32, 0 on
    fields never corrupted. seed: seeds the streams now (None: OS entropy until `new_episode` gets a seed).
    After `new_episode`: values, obs_noise_scale (obs_dim,), obs_bias (obs_dim,), gravity_offset (3,),
    corrupt_obs, relative_noise, action_noise_std, latency, timestep_jitter, pushes.
    Per control step, callers draw in this order: action_noise, step_delay, push, observation_noise.
    """

    def __init__(self, spec: RandomizationSpec, obs_mask: np.ndarray, seed: int | None = None):
        self.spec = spec
        self.obs_mask = obs_mask
        self._seed(seed)
        self.values: dict[str, float] = {}
        self.obs_noise_scale = np.zeros_like(obs_mask)  # std * mask
        self.obs_bias = np.zeros_like(obs_mask)
        self.gravity_offset = np.zeros(3)
        self.corrupt_obs = False
        self.relative_noise = 0.0
        self.action_noise_std = 0.0
        self.latency = 0
        self.timestep_jitter = 0.0
        self.push_speed = 0.0
        self.push_probability = 0.0

    def _seed(self, seed: int | None) -> None:
        episode_seq, step_seq = np.random.SeedSequence(None if seed is None else [seed, SEED_SALT]).spawn(2)
        self._episode_rng = np.random.default_rng(episode_seq)
        self._step_rng = np.random.default_rng(step_seq)

    def new_episode(self, seed: int | None = None) -> dict[str, float]:
        """Reseed when given a seed, then draw this episode's values (spec order), observation bias and gravity
        offset, in that order."""
        if seed is not None:
            self._seed(seed)
        values = self.spec.sample(self._episode_rng)
        self.values = values
        obs_std = values.get("observation_noise", 0.0)
        bias_std = values.get("observation_bias", 0.0)
        self.obs_noise_scale[:] = obs_std * self.obs_mask
        if "observation_bias" in values:
            self.obs_bias[:] = self._episode_rng.normal(0.0, bias_std, self.obs_mask.shape[0]) * self.obs_mask
        if "gravity_perturbation" in values:
            self.gravity_offset[:] = self._episode_rng.normal(0.0, values["gravity_perturbation"], 3)
        self.relative_noise = values.get("observation_noise_relative", 0.0)
        self.corrupt_obs = obs_std > 0 or bias_std > 0 or self.relative_noise > 0
        self.action_noise_std = values.get("action_noise", 0.0)
        self.latency = int(values.get("action_latency", 0))
        self.timestep_jitter = values.get("timestep_jitter", 0.0)
        self.push_speed = values.get("object_push", 0.0)
        self.push_probability = values.get("object_push_probability", 0.0)
        return values

    @property
    def pushes(self) -> bool:
        """Whether this episode kicks the object at all (a positive speed and probability)."""
        return self.push_speed > 0 and self.push_probability > 0

    def action_noise(self, shape: tuple[int, ...]) -> np.ndarray:
        """Unit Gaussian float32 draws for one step's action (scale by action_noise_std)."""
        return self._step_rng.standard_normal(shape, dtype=np.float32)

    def step_delay(self) -> float:
        """Seconds this control step lasts beyond the control period: Exp(mean = timestep_jitter)."""
        return float(self._step_rng.exponential(self.timestep_jitter))

    def push(self) -> np.ndarray | None:
        """This step's kick to the object's (x, y) velocity in m/s: with probability push_probability, speed
        push_speed in a uniformly random horizontal direction; None without a kick. Two draws every step."""
        chance, turn = self._step_rng.random(2)
        if chance >= self.push_probability:
            return None
        angle = 2.0 * math.pi * turn
        return self.push_speed * np.array([math.cos(angle), math.sin(angle)])

    def observation_noise(self, out: np.ndarray, running_std: np.ndarray | None = None) -> np.ndarray:
        """Fill out (obs_dim,) float32 with this step's noise: N(0, 1) * per-feature std.

        The std is observation_noise, or, with observation_noise_relative and running_std ((obs_dim,) float64,
        the std of this env's clean observations so far), sqrt(observation_noise^2 + (relative x running_std)^2):
        the two are independent Gaussians, which add in variance, so one draw covers both.
        """
        self._step_rng.standard_normal(dtype=np.float32, out=out)
        if running_std is None or self.relative_noise == 0:
            out *= self.obs_noise_scale
        else:
            std = np.hypot(self.values.get("observation_noise", 0.0), self.relative_noise * running_std)
            out *= (std * self.obs_mask).astype(np.float32)
        return out


class RunningMoments:
    """Running mean and variance of the clean observations of `n` envs (Welford's update, in float64), kept
    across episodes; a reset with a seed clears them, as it reseeds the streams. Elementwise only, so one env's
    rows come out bit-identical whether it is updated alone (the wrapper, n = 1) or within a batch."""

    def __init__(self, n: int, dim: int):
        self.count = np.zeros(n)
        self.mean = np.zeros((n, dim))
        self.m2 = np.zeros((n, dim))

    def update(self, idx: np.ndarray, x: np.ndarray) -> None:
        """Add one observation per env of idx: x (len(idx), dim)."""
        self.count[idx] += 1
        delta = x - self.mean[idx]
        self.mean[idx] += delta / self.count[idx, None]
        self.m2[idx] += delta * (x - self.mean[idx])

    def clear(self, idx: np.ndarray) -> None:
        """Forget what envs idx have seen (a reset with a seed restarts an env's random processes)."""
        self.count[idx] = 0.0
        self.mean[idx] = 0.0
        self.m2[idx] = 0.0

    def std(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), dim) population std of what envs idx have seen so far (0 before two observations)."""
        return np.sqrt(self.m2[idx] / np.maximum(self.count[idx, None], 1))


class DomainRandomization(gym.Wrapper):
    """Samples every spec parameter once per episode (at reset) from a generator seeded by reset(seed=s).

    env: flat-observation env, observations of shape (layout.dim,) float32, freshly allocated each step.
    seed: used for the first reset when that reset gets no seed, so sub-envs built with a seed reproduce.
    Attributes: current_values (active parameter -> value this episode), active_parameters (the order of
    info["privileged_params"]), inactive_parameters (spec parameters this env has no target for; never applied
    or reported).
    """

    def __init__(
        self, env: gym.Env, spec: RandomizationSpec, layout: ObservationLayout, seed: int | None = None
    ):
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"DomainRandomization needs a Box action space, got {env.action_space}")
        self.randomization_spec = spec
        self.layout = layout
        self.dynamics = ModelDynamics.for_env(env, model_modes(spec))
        self.inactive_parameters = self.dynamics.inactive
        self.active_parameters = tuple(n for n in spec.names if n not in self.inactive_parameters)
        self.current_values: dict[str, float] = {}
        self._privileged = np.zeros(len(self.active_parameters), dtype=np.float32)
        self._data = getattr(env.unwrapped, "data", None)  # the MuJoCo state object_push kicks

        self._action_low = env.action_space.low
        self._action_high = env.action_space.high
        self._action_dtype = env.action_space.dtype
        self._action_mid = action_midpoint(env.action_space)

        self._pending_seed = seed
        self.streams = RandomizationStreams(active_spec(spec, self.inactive_parameters), obs_mask(layout), seed)
        relative = "observation_noise_relative" in self.streams.spec
        self._moments = RunningMoments(1, layout.dim) if relative else None
        self._obs_noise_buf = np.zeros(layout.dim, dtype=np.float32)
        self._queue = np.zeros((0, *env.action_space.shape), dtype=self._action_dtype)
        self._head = 0

    def set_spec(self, spec: RandomizationSpec) -> None:
        """Sample the next episodes from `spec` (same parameters as at construction; see respec)."""
        new = respec(self.randomization_spec, self.inactive_parameters, spec)
        self.dynamics.modes.update(model_modes(new))
        self.streams.spec = new

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None

        values = self.streams.new_episode(seed)
        if seed is not None and self._moments is not None:
            self._moments.clear(ONLY_ENV)
        self.current_values = values
        self._privileged[:] = [values[n] for n in self.active_parameters]
        self.dynamics.apply(
            {n: v for n, v in values.items() if n in self.dynamics.targets}, self.streams.gravity_offset
        )
        # Before the agent has acted, the robot executes the neutral (midpoint) command.
        self._queue = np.tile(self._action_mid, (self.streams.latency, 1))
        self._head = 0

        obs, info = self.env.reset(seed=seed, options=options)
        info["randomization"] = dict(values)
        return self._observe(obs, info), info

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
        if streams.timestep_jitter > 0:
            self.dynamics.delay_step(streams.step_delay())
        if streams.pushes:
            kick = streams.push()
            if kick is not None:
                self._data.qvel[self.dynamics.push_dofs] += kick
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs, info), reward, terminated, truncated, info

    def _observe(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """obs + per-episode bias + per-step noise, in place (obs is a fresh array); the clean observation and
        this episode's values go into info."""
        info[CLEAN_OBS] = obs.copy()
        info[PRIVILEGED_PARAMS] = self._privileged.copy()
        running_std = None
        if self._moments is not None:
            self._moments.update(ONLY_ENV, obs[None])
            running_std = self._moments.std(ONLY_ENV)[0]
        if self.streams.corrupt_obs:
            obs += self.streams.observation_noise(self._obs_noise_buf, running_std)
            obs += self.streams.obs_bias
        return obs


def model_modes(spec: RandomizationSpec) -> dict[str, Mode]:
    """name -> Mode of every dynamics and perturbation parameter of the spec (what ModelDynamics applies)."""
    return {p.name: p.mode for p in spec.parameters if p.kind in (Kind.DYNAMICS, Kind.PERTURBATION)}


def active_spec(spec: RandomizationSpec, inactive: tuple[str, ...]) -> RandomizationSpec:
    """The spec without the parameters an env has no target for (never sampled, applied or reported).
    Raises ValueError where the spec names one parameter of a pair without the other (randomization.PAIRS)."""
    check_pairs(spec)
    return RandomizationSpec(tuple(p for p in spec.parameters if p.name not in inactive), spec.source)


def respec(
    construction: RandomizationSpec, inactive: tuple[str, ...], spec: RandomizationSpec
) -> RandomizationSpec:
    """The active spec an env samples its next episodes from after set_env_spec(spec): `spec`'s parameters in
    the construction spec's order (so draws and privileged_params keep their order), inactive ones dropped.

    spec must name the construction spec's parameters: all of them, or all but (some of) the inactive ones.
    """
    spec = load_spec(spec)
    names, required = set(spec.names), set(construction.names) - set(inactive)
    if not required <= names <= set(construction.names):
        missing, extra = sorted(required - names), sorted(names - set(construction.names))
        raise ValueError(
            f"set_env_spec: spec {spec.source} has parameters {sorted(names)}, but this env was built with "
            f"{sorted(construction.names)} (missing: {missing}, not in it: {extra}). Fix: give a spec with the same "
            "parameters, only ranges changed (parameters cannot be added or removed after construction)"
        )
    kept = tuple(spec[n] for n in construction.names if n in names and n not in inactive)
    return active_spec(RandomizationSpec(kept, spec.source), ())


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
