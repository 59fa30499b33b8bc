"""Each env's random processes and the per-step corruption they drive, for N environments at once.

`RandomizationStreams` holds one env's seeded draws (episode values, observation bias, gravity offset, per-step
noise, step delays, object kicks); `StepCorruption` applies the per-step part to N envs: action noise, the
action-latency ring buffer, timestep jitter, object pushes, observation noise and bias. Both backends use them:
the gym wrapper (envs/domain_randomization.py) is the N = 1 case, the batched backend (envs/batched/) steps all
N at once, so the same seed gives the same values and the same noise sequence on either backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import gymnasium as gym
import numpy as np

from envs.randomization import RandomizationSpec

# Mixed with the reset seed so these streams differ from the env's own np_random stream.
SEED_SALT = 0x5EED_D0


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


class StepCorruption:
    """The per-step corruption of N environments, each drawing from its own `RandomizationStreams`.

    streams: one per env (the parameters it applies, inactive ones already removed). action_space: one env's Box
    (bounds, dtype, shape (A,)). obs_dim: one env's observation size.
    `new_episode(i, seed)` starts env i's episode; per control step the caller runs, in this order,
    `actions` (noise, then latency), `delays` and `kicks` (its physics applies them) and `observe` (noise and
    bias on the new observations): the order each env's streams draw in.
    """

    def __init__(self, streams: list[RandomizationStreams], action_space: gym.spaces.Box, obs_dim: int):
        n = len(streams)
        self.streams = streams
        self.action_low, self.action_high = action_space.low, action_space.high
        self.action_dtype = action_space.dtype
        self.neutral = action_midpoint(action_space)
        relative = "observation_noise_relative" in streams[0].spec
        self.moments = RunningMoments(n, obs_dim) if relative else None
        self.action_noise_std = np.zeros(n, dtype=np.float32)
        self.latency = np.zeros(n, dtype=np.int64)
        self.head = np.zeros(n, dtype=np.int64)
        self.queue = np.zeros((n, 0, *action_space.shape), dtype=self.action_dtype)  # grows to the longest latency
        self.jitter = np.zeros(n, dtype=bool)
        self.push = np.zeros(n, dtype=bool)
        self.corrupt = np.zeros(n, dtype=bool)
        self.obs_bias = np.zeros((n, obs_dim), dtype=np.float32)
        self.noise = np.zeros((n, obs_dim), dtype=np.float32)

    def new_episode(self, i: int, seed: int | None) -> dict[str, float]:
        """Start env i's episode: reseed its streams when given a seed (its running moments restart with them),
        draw the episode's values and set its corruption from them. Returns the values (spec order)."""
        streams = self.streams[i]
        values = streams.new_episode(seed)
        if seed is not None and self.moments is not None:
            self.moments.clear(np.array([i]))
        self.action_noise_std[i] = streams.action_noise_std
        self.jitter[i] = streams.timestep_jitter > 0
        self.push[i] = streams.pushes
        self.corrupt[i] = streams.corrupt_obs
        self.obs_bias[i] = streams.obs_bias
        latency = streams.latency
        if latency > self.queue.shape[1]:
            grown = np.zeros((self.queue.shape[0], latency, *self.queue.shape[2:]), dtype=self.action_dtype)
            grown[:, : self.queue.shape[1]] = self.queue
            self.queue = grown
        # Before the agent has acted, the robot executes the neutral (midpoint) command.
        self.queue[i] = self.neutral
        self.latency[i] = latency
        self.head[i] = 0
        return values

    @property
    def alters_actions(self) -> bool:
        """Whether any env's running episode adds action noise or delays its actions."""
        return bool((self.action_noise_std > 0).any() or (self.latency > 0).any())

    def actions(self, action: np.ndarray) -> np.ndarray:
        """What the robots execute this step: action (N, A) of the action dtype, changed in place and returned.

        Gaussian noise (std action_noise) clipped to the bounds, then per-env ring buffers of the last `latency`
        actions: each env executes its oldest and stores the newest in its place."""
        noisy = np.flatnonzero(self.action_noise_std > 0)
        if noisy.size:
            noise = np.stack([self.streams[i].action_noise(self.neutral.shape) for i in noisy])
            action[noisy] = np.clip(
                action[noisy] + self.action_noise_std[noisy, None] * noise, self.action_low, self.action_high
            )
        delayed = np.flatnonzero(self.latency > 0)
        if delayed.size:
            head = self.head[delayed]
            executed = self.queue[delayed, head].copy()
            self.queue[delayed, head] = action[delayed]
            self.head[delayed] = (head + 1) % self.latency[delayed]
            action[delayed] = executed
        return action

    def delays(self) -> Iterator[tuple[int, float]]:
        """(env, seconds) for every env whose next control step lasts longer than its period (timestep_jitter)."""
        for i in np.flatnonzero(self.jitter):
            yield int(i), self.streams[i].step_delay()

    def kicks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(env, (2,) m/s) for every env whose object is kicked before this step's physics (object_push)."""
        for i in np.flatnonzero(self.push):
            kick = self.streams[i].push()
            if kick is not None:
                yield int(i), kick

    def observe(self, obs: np.ndarray, idx: np.ndarray) -> None:
        """Corrupt rows idx of obs (N, obs_dim) float32 in place: the clean rows go into the running moments,
        then the envs whose episode corrupts observations get this step's noise and their episode's bias."""
        if self.moments is not None:
            self.moments.update(idx, obs[idx])
        rows = idx[self.corrupt[idx]]
        if rows.size:
            running_std = self.moments.std(rows) if self.moments is not None else [None] * rows.size
            for i, std in zip(rows, running_std, strict=True):
                self.streams[i].observation_noise(self.noise[i], std)
            obs[rows] += self.noise[rows]
            obs[rows] += self.obs_bias[rows]


def action_midpoint(space: gym.spaces.Box) -> np.ndarray:
    """The neutral command a latency queue starts from: the midpoint of finite bounds, 0 elsewhere."""
    low, high = space.low, space.high
    return np.where(np.isfinite(low) & np.isfinite(high), (low + high) / 2, 0.0).astype(space.dtype)
