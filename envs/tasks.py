"""Building one training env for any registered Gymnasium task with a Box action space.

make_env = gym.make(task) -> FlattenObservation (named float32 layout) -> DomainRandomization.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from envs.contacts import GraspInfo
from envs.corruption import action_midpoint
from envs.domain_randomization import DomainRandomization
from envs.fetch import FETCH_TASKS, SUCCESS_KEY
from envs.layout import FlattenObservation, ObservationLayout
from envs.randomization import RandomizationSpec, load_profile, load_spec
from envs.registration import gymnasium_robotics  # noqa: F401  (registers the Fetch tasks)


def _accepted() -> str:
    return f"any registered Gymnasium id with a Box action space, e.g. {', '.join(FETCH_TASKS[:4])}, Pendulum-v1"


def _make_raw(task: str) -> gym.Env:
    """gym.make with errors that name the task and what is accepted."""
    if task not in gym.registry:
        close = difflib.get_close_matches(task, list(gym.registry), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown task '{task}'.{hint} Accepted: {_accepted()}")
    env = gym.make(task)
    if not isinstance(env.action_space, gym.spaces.Box):
        space = env.action_space
        env.close()
        raise ValueError(f"task '{task}' has a {type(space).__name__} action space; accepted: {_accepted()}")
    return env


def make_env(
    task: str,
    seed: int | None = None,
    randomization: str | Path | RandomizationSpec = "none",
    profile: str | Path | RandomizationSpec | None = None,
) -> gym.Env:
    """One env with flat float32 Box observations in the task's named layout and domain randomisation.

    randomization: 'none', 'default', a TOML path or a spec. profile: a shipped profile name, a TOML path
    or a spec; its entries replace same-named entries of the randomisation spec.
    seed: seeds the first reset (when reset() gets no seed) and the action space.
    """
    spec = load_spec(randomization)
    if profile is not None:
        spec = spec.merged_with(load_profile(profile))
    env = FlattenObservation(_make_raw(task))
    env = DomainRandomization(env, spec, env.layout, seed=seed)
    if _reports_grasp(env):
        env = GraspInfo(env)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def _reports_grasp(env: gym.Env) -> bool:
    """Fetch tasks with an object and free fingers (FetchPickAndPlace) report info["grasped"]."""
    base = env.unwrapped
    return bool(getattr(base, "has_object", False)) and not bool(getattr(base, "block_gripper", True))


@dataclass(frozen=True)
class TaskInfo:
    """Facts about a task that the trainer and the exported policy need."""

    task: str
    layout: ObservationLayout
    action_low: np.ndarray
    action_high: np.ndarray
    control_dt: float
    """Seconds per env step."""
    max_episode_steps: int | None
    success_key: str | None
    """info key holding per-step success ('is_success' for Fetch tasks), None where the task reports none."""


def describe_task(task: str) -> TaskInfo:
    """Build one env, read its facts (one reset and one neutral step to see its info keys), close it."""
    env = make_env(task, seed=0)
    try:
        unwrapped = env.unwrapped
        dt = getattr(unwrapped, "dt", None)
        control_dt = float(dt) if dt is not None else 1.0 / float(env.metadata["render_fps"])
        env.reset()
        low, high = env.action_space.low, env.action_space.high
        info = env.step(action_midpoint(env.action_space))[-1]
        return TaskInfo(
            task=task,
            layout=env.get_wrapper_attr("layout"),
            action_low=low.copy(),
            action_high=high.copy(),
            control_dt=control_dt,
            max_episode_steps=env.spec.max_episode_steps if env.spec is not None else None,
            success_key=SUCCESS_KEY if SUCCESS_KEY in info else None,
        )
    finally:
        env.close()
