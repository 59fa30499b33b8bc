"""Fetch observations, rewards and success for N environments at once, as gymnasium-robotics computes them
for one (`MujocoFetchEnv.generate_mujoco_observations`, `_get_obs`, `compute_reward`, `_is_success`)."""

from __future__ import annotations

import numpy as np
from gymnasium_robotics.utils.rotations import mat2euler

from envs.batched.engine import RolloutEngine


def observe(engine: RolloutEngine, goal: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Flat observations (observation, achieved_goal, desired_goal) of every environment into out (N, dim)
    float32. goal: (N, 3). Velocities are Jacobian @ qvel scaled by each environment's control step (engine.dt),
    as the reference scales them by its model's current timestep x n_substeps."""
    task = engine.task
    dt = engine.dt[:, None]
    qvel = engine.qvel[:, :, None]
    grip_pos = engine.site_xpos[:, 0]
    grip_velp = (engine.site_jacp[:, 0] @ qvel)[..., 0] * dt
    gripper_state = engine.qpos[:, task.finger_qposadr]
    gripper_vel = engine.qvel[:, task.finger_dofadr] * dt
    if task.has_object:
        object_pos = engine.site_xpos[:, 1]
        object_rot = mat2euler(engine.object_xmat)
        object_velp = (engine.site_jacp[:, 1] @ qvel)[..., 0] * dt
        object_velr = (engine.object_jacr @ qvel)[..., 0] * dt
        object_rel_pos = object_pos - grip_pos
        object_velp -= grip_velp
        parts = (grip_pos, object_pos, object_rel_pos, gripper_state, object_rot, object_velp, object_velr,
                 grip_velp, gripper_vel, object_pos, goal)
    else:
        parts = (grip_pos, gripper_state, grip_velp, gripper_vel, grip_pos, goal)
    np.concatenate(parts, axis=1, out=out, casting="same_kind")
    return out


def achieved_goal(engine: RolloutEngine) -> np.ndarray:
    """(N, 3) float64: the object's position, or the gripper's on FetchReach."""
    return engine.site_xpos[:, 1 if engine.task.has_object else 0]


def goal_distance(engine: RolloutEngine, goal: np.ndarray) -> np.ndarray:
    """(N,) float64 Euclidean distance between achieved and desired goal."""
    return np.linalg.norm(achieved_goal(engine) - goal, axis=-1)


def reward(engine: RolloutEngine, distance: np.ndarray) -> np.ndarray:
    """(N,) float64: -distance (Dense tasks) or -(distance > threshold) (sparse)."""
    if engine.task.dense:
        return -distance
    return -(distance > engine.task.distance_threshold).astype(np.float64)


def success(engine: RolloutEngine, distance: np.ndarray) -> np.ndarray:
    """(N,) float32 is_success: distance < threshold."""
    return (distance < engine.task.distance_threshold).astype(np.float32)
