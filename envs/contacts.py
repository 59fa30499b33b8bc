"""Grasp detection from MuJoCo's contact list: the object is grasped when both gripper fingers touch it.

Both backends read the same contacts: the reference env's `data.contact` after its step, and the batched engine's
collision pass at the state it reads kinematics from (envs/batched/engine.py), so `infos["grasped"]` agrees.
Geoms are looked up by their bodies' names, never by fixed ids.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

FINGER_BODIES = ("robot0:r_gripper_finger_link", "robot0:l_gripper_finger_link")
OBJECT_BODY = "object0"
GRASPED = "grasped"  # info key: (N,) float32 1.0 where both fingers touch the object


def _body_geoms(model: mujoco.MjModel, body: str) -> np.ndarray:
    body_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
    if body_id < 0:
        raise ValueError(f"the model has no body named '{body}'; grasp detection needs a Fetch model with an object")
    return np.flatnonzero(model.geom_bodyid == body_id)


class GraspDetector:
    """`grasped(data)`: True when each finger has a contact with one of the object's geoms."""

    def __init__(self, model: mujoco.MjModel) -> None:
        self.fingers = [_body_geoms(model, name) for name in FINGER_BODIES]
        self.object = _body_geoms(model, OBJECT_BODY)

    def grasped(self, data: mujoco.MjData) -> bool:
        n = data.ncon
        if n == 0:
            return False
        pairs = data.contact.geom[:n]
        first_is_object = np.isin(pairs[:, 0], self.object)
        second_is_object = np.isin(pairs[:, 1], self.object)
        touching = np.concatenate([pairs[first_is_object, 1], pairs[second_is_object, 0]])
        return all(np.isin(finger, touching).any() for finger in self.fingers)


def can_grasp(model: mujoco.MjModel) -> bool:
    """True for models with both finger bodies and an object (FetchPickAndPlace; Push/Slide have blocked fingers but
    the bodies exist too, so callers also check the task's block_gripper)."""
    names = [*FINGER_BODIES, OBJECT_BODY]
    return all(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) >= 0 for n in names)


class GraspInfo(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds `info["grasped"]` (float 0/1) to every reset and step of a Fetch env with an object and free fingers,
    read from the env's contact list after the step."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.detector = GraspDetector(env.unwrapped.model)

    def _grasped(self) -> np.float32:
        return np.float32(self.detector.grasped(self.env.unwrapped.data))

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        info[GRASPED] = self._grasped()
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info[GRASPED] = self._grasped()
        return obs, reward, terminated, truncated, info
