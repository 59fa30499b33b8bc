"""The simulated Fetch robot (any ``envs`` task) behind the runtime's ``Robot`` protocol.

It lives in robopg, not in policies_export, because it needs envs (MuJoCo, Gymnasium), which a robot
computer does not install. It satisfies ``policies_export.robot.EpisodicRobot`` structurally (read, apply,
time, episode_done, reset) and adds what evaluation scores: per-episode returns and successes.

``robot_from_spec`` is registered as the ``sim`` robot under the ``policies_export.robots`` entry point group
(pyproject.toml), so ``robopg-controller POLICY.onnx --robot sim:FetchPush-v4`` finds it without the runtime
ever importing robopg; the runtime imports this module only when ``sim:`` is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import envs
from envs.latency_input import LatencyInput
from envs.tasks import SUCCESS_KEY


class SimRobot:
    """``envs.make_env(task, seed, randomization, profile)`` as a robot.

    Time is simulated: each ``apply`` advances it by the task's control period, across episodes, so the
    runtime's stale-observation watchdog sees a clock that only moves forward.

    observer: called with the robot after every reset (the first one inside the constructor) and after every
    step, e.g. to render a frame (robopg/video.py); it reads ``episode``, ``episode_step``,
    ``episode_return`` and ``last_info``.
    """

    def __init__(
        self,
        task: str,
        seed: int = 0,
        randomization: str | Path = "none",
        profile: str | Path | None = None,
        observer: Callable[[SimRobot], None] | None = None,
        latency_input: bool = False,
    ) -> None:
        """Episode i starts from ``reset(seed=seed + i)``, so results are reproducible from ``seed``. latency_input:
        the observation ends with the episode's action latency in control steps (envs/latency_input.py), as the
        driver of a robot reports it to a policy trained with ``--latency-input``."""
        self.task = task
        self.seed = seed
        self.env = envs.make_env(task, seed=seed, randomization=randomization, profile=profile)
        if latency_input:
            self.env = LatencyInput(self.env)
        self.layout: tuple[tuple[str, int], ...] = self.env.get_wrapper_attr("layout").fields
        self.control_dt = float(
            getattr(self.env.unwrapped, "dt", 1.0 / self.env.metadata.get("render_fps", 25))
        )
        self.episode_returns: list[float] = []
        """Return of each finished episode."""
        self.episode_successes: list[float] = []
        """Success (0/1) at the last step of each finished episode; empty for tasks without success."""
        self.episode = 0
        """Index of the current episode, from 0."""
        self.episode_step = 0
        """Steps taken in the current episode."""
        self.episode_return = 0.0
        """Reward summed over the current episode so far."""
        self.last_info: dict[str, Any] = {}
        """The info of the last reset or step."""
        self.observer = observer
        self._time = 0.0
        self._done = False
        self._obs, self.last_info = self.env.reset(seed=seed)
        self._notify()

    @property
    def obs_dim(self) -> int:
        return sum(size for _, size in self.layout)

    def read(self) -> np.ndarray:
        """The current observation, (obs_dim,) float32 in the task's layout."""
        return self._obs

    def apply(self, action: np.ndarray) -> None:
        """Step the simulator with ``action``: (act_dim,), within the task's bounds."""
        if self._done:
            raise RuntimeError(f"{self.task}: episode {self.episode} is over; call reset() before apply()")
        self._obs, reward, terminated, truncated, info = self.env.step(action)
        self._time += self.control_dt
        self.episode_step += 1
        self.episode_return += float(reward)
        self.last_info = info
        if terminated or truncated:
            self._done = True
            self.episode_returns.append(self.episode_return)
            if SUCCESS_KEY in info:
                self.episode_successes.append(float(info[SUCCESS_KEY]))
        self._notify()

    @property
    def success(self) -> float | None:
        """The task's success signal at the last reset or step (0/1); None for tasks without one."""
        value = self.last_info.get(SUCCESS_KEY)
        return None if value is None else float(value)

    def time(self) -> float:
        """Simulated seconds since construction at the current observation."""
        return self._time

    def episode_done(self) -> bool:
        return self._done

    def reset(self) -> None:
        self.episode += 1
        self._obs, self.last_info = self.env.reset(seed=self.seed + self.episode)
        self.episode_step = 0
        self.episode_return = 0.0
        self._done = False
        self._notify()

    def _notify(self) -> None:
        if self.observer is not None:
            self.observer(self)

    def close(self) -> None:
        self.env.close()


def robot_from_spec(arg: str, options: dict[str, str]) -> SimRobot:
    """``--robot sim:TASK`` with ``--robot-option seed=N profile=P randomization=R latency_input=true`` (all
    optional; latency_input for a policy trained with ``--latency-input``)."""
    known = {"seed", "profile", "randomization", "latency_input"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"sim robot: unknown option(s) {unknown}; it takes {sorted(known)}")
    if not arg:
        raise ValueError("sim robot: name the task, e.g. --robot sim:FetchReachDense-v4")
    profile = options.get("profile")
    return SimRobot(
        arg,
        seed=int(options.get("seed", 0)),
        randomization=options.get("randomization", "none"),
        profile=None if profile in (None, "none") else profile,
        latency_input=options.get("latency_input", "false").lower() in ("1", "true", "yes"),
    )
