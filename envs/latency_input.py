"""The episode's action latency as an observation: a policy told the delay it acts under, not left to infer it.

A robot's driver can measure its command latency (the time from sending a command to the motion it starts), so a
deployed policy can be given it as an input. ``LatencyInput`` (one env) and ``VecLatencyInput`` (a vector env)
append the episode's action latency, in whole control steps as float32, as one last observation field named
``LATENCY_FIELD``; 0 where the randomisation spec (or profile) sets no ``action_latency``. The value is this
episode's, read from ``info["privileged_params"]`` (envs/domain_randomization.py), and it is appended after noise
and bias: a configured or measured number, not a sensor reading. On the robot the driver puts its measured latency
divided by the control period in that field (docs/sim2real.md, section 2).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from envs.domain_randomization import PRIVILEGED_PARAMS
from envs.layout import ObservationLayout

LATENCY_FIELD = "action_latency_steps"
LATENCY_PARAMETER = "action_latency"  # the randomisation spec's parameter (envs/randomization.py)


def told_latency(layout) -> bool:
    """Whether a policy's observation layout (``(name, size)`` pairs, an exported file's ``observation_layout``)
    names the latency field: the policy was trained with ``--latency-input``, so its robot must fill it in."""
    return LATENCY_FIELD in dict(layout)


def with_latency_field(layout: ObservationLayout) -> ObservationLayout:
    """``layout`` with the latency field appended (its last value)."""
    return ObservationLayout((*layout.fields, (LATENCY_FIELD, 1)))


def _widened(space: gym.spaces.Box) -> gym.spaces.Box:
    """A flat Box with one more value, the latency in steps: [0, inf)."""
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        raise TypeError(f"the latency input needs flat Box observations, got {space}; flatten them first")
    return gym.spaces.Box(np.append(space.low, np.float32(0)).astype(np.float32),
                          np.append(space.high, np.float32(np.inf)).astype(np.float32), dtype=np.float32)


def _column(names: tuple[str, ...] | list[str]) -> int | None:
    names = tuple(names)
    return names.index(LATENCY_PARAMETER) if LATENCY_PARAMETER in names else None


class LatencyInput(gym.Wrapper):
    """One env from ``envs.make_env``: flat observations (obs_dim,) -> (obs_dim + 1,), the last value the episode's
    action latency in control steps. ``layout`` gains the field."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = _widened(env.observation_space)
        self.layout = with_latency_field(env.get_wrapper_attr("layout"))
        self._column = _column(env.get_wrapper_attr("active_parameters"))

    def _append(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        latency = 0.0 if self._column is None else float(info[PRIVILEGED_PARAMS][self._column])
        return np.append(np.asarray(obs, dtype=np.float32), np.float32(latency))

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._append(obs, info), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._append(obs, info), reward, terminated, truncated, info


class VecLatencyInput(gym.vector.VectorWrapper):
    """A vector env from ``envs.make_vec`` (SAME_STEP autoreset): observations (N, obs_dim) -> (N, obs_dim + 1), the
    last column each env's current episode's latency in control steps. At an episode end ``infos["final_obs"][i]``
    gains the ended episode's latency (from ``infos["final_info"]``), the returned obs the new episode's."""

    def __init__(self, env: gym.vector.VectorEnv, parameter_names: tuple[str, ...]) -> None:
        super().__init__(env)
        self.single_observation_space = _widened(env.single_observation_space)
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)
        self._column = _column(parameter_names)

    def _latency(self, infos: dict[str, Any]) -> np.ndarray:
        if self._column is None:
            return np.zeros(self.num_envs, dtype=np.float32)
        return np.asarray(infos[PRIVILEGED_PARAMS], dtype=np.float32)[:, self._column]

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, infos = self.env.reset(**kwargs)
        return np.column_stack([obs, self._latency(infos)]).astype(np.float32), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            ended = self._latency(infos["final_info"])
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in done:
                final_obs[i] = np.append(np.asarray(infos["final_obs"][i], dtype=np.float32), np.float32(ended[i]))
            infos = {**infos, "final_obs": final_obs}
        return np.column_stack([obs, self._latency(infos)]).astype(np.float32), rewards, terminated, truncated, infos
