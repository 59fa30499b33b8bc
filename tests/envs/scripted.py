"""A scripted pick-and-place controller for tests: go above the object, descend, close the fingers, carry the object
to the goal. Works from flat Fetch observations (layout observation(25), achieved_goal, desired_goal)."""

import numpy as np

GRIP, OBJECT, GOAL = slice(0, 3), slice(3, 6), slice(28, 31)


def pick_and_place_actions(obs: np.ndarray, step: int) -> np.ndarray:
    """(N, 4) float32 actions for observations (N, 31) at episode step `step` (the same for all envs)."""
    grip, obj, goal = obs[:, GRIP], obs[:, OBJECT], obs[:, GOAL]
    above = obj + np.array([0.0, 0.0, 0.06])
    if step < 12:
        target, fingers = above, 1.0
    elif step < 20:
        target, fingers = obj, 1.0
    elif step < 25:
        target, fingers = obj, -1.0
    else:
        target, fingers = goal, -1.0
    action = np.empty((obs.shape[0], 4), dtype=np.float32)
    action[:, :3] = np.clip(10.0 * (target - grip), -1.0, 1.0)
    action[:, 3] = fingers
    return action
