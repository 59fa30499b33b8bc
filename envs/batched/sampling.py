"""Initial object positions and goals, drawn per environment in gymnasium-robotics' order from that
environment's own generator (`MujocoFetchEnv._reset_sim`, `_sample_goal`), so a seed gives the same episode on
both backends."""

from __future__ import annotations

import numpy as np

from envs.batched.fetch_task import FetchTask

MIN_OBJECT_DISTANCE = 0.1  # _reset_sim redraws the object until it is this far (m) from the gripper


def sample_object_xy(task: FetchTask, rng: np.random.Generator) -> np.ndarray:
    """(2,) object x, y on the table, uniform around the gripper but not under it."""
    start = task.initial_gripper_xpos[:2]
    xy = start
    while np.linalg.norm(xy - start) < MIN_OBJECT_DISTANCE:
        xy = start + rng.uniform(-task.obj_range, task.obj_range, size=2)
    return xy


def sample_goal(task: FetchTask, rng: np.random.Generator, air_fraction: float = 0.5) -> np.ndarray:
    """(3,) goal: around the gripper's start (FetchReach), or on the table (and, for PickAndPlace, a fraction
    air_fraction of the time, the task's own being half, up to 0.45 m above it) around the gripper plus the task's
    target offset. The draws are the same whatever air_fraction is, so the rest of the stream is unchanged."""
    goal = task.initial_gripper_xpos[:3] + rng.uniform(-task.target_range, task.target_range, size=3)
    if task.has_object:
        goal += task.target_offset
        goal[2] = task.height_offset
        if task.target_in_the_air and rng.uniform() < air_fraction:
            goal[2] += rng.uniform(0, 0.45)
    return goal
