"""`FetchTask`: everything the batched backend needs to know about one Fetch task, read from the reference env.

The gymnasium-robotics env is built once (`gym.make(task)`); its settled model (after `_env_setup`: mocap
welds reset, arm moved to its start pose), initial state and task constants are copied from it, and every
MuJoCo id is looked up by name. Nothing here is a second copy of a gymnasium-robotics constant; the family's
names (task ids, which tasks have an object) come from envs/fetch.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium_robotics.envs.fetch.fetch_env import MujocoFetchEnv

from envs.dynamics import model_id
from envs.fetch import FETCH_TASKS, has_object
from envs.layout import ObservationLayout
from envs.registration import gymnasium_robotics  # noqa: F401  (registers the Fetch tasks)

GRIP_SITE = "robot0:grip"
OBJECT_SITE = "object0"
OBJECT_JOINT = "object0:joint"
MOCAP_BODY = "robot0:mocap"
# robot_get_obs reports the last two robot joints, in this order: gripper_state = (r, l).
FINGER_JOINTS = ("robot0:r_gripper_finger_joint", "robot0:l_gripper_finger_joint")
# gymnasium-robotics' _set_action: pos_ctrl *= 0.05 and a fixed end-effector orientation quaternion delta.
POS_STEP = 0.05
ROT_DELTA = np.array([1.0, 0.0, 1.0, 0.0])


def is_batched_task(task: str) -> bool:
    """True for the tasks the batched backend simulates (the four Fetch -v4 tasks, sparse and Dense)."""
    return task in FETCH_TASKS


def _required_id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    i = model_id(model, kind, name)
    if i < 0:
        raise ValueError(f"Fetch model has no {kind.name} named '{name}'")
    return i


@dataclass(frozen=True)
class FetchTask:
    """Constants of one Fetch task. Arrays are float64 unless stated."""

    task: str
    model: mujoco.MjModel
    """The reference env's model after its setup (do not change it; the backend copies it per environment)."""
    layout: ObservationLayout
    initial_state: np.ndarray
    """(nstate,) mjSTATE_FULLPHYSICS state every episode starts from, before the object is placed."""
    initial_gripper_xpos: np.ndarray
    height_offset: float
    """Table-top height of the object's site (goal height for tasks with an object), 0 without an object."""
    has_object: bool
    block_gripper: bool
    target_in_the_air: bool
    target_offset: np.ndarray
    obj_range: float
    target_range: float
    distance_threshold: float
    dense: bool
    n_substeps: int
    max_episode_steps: int
    # MuJoCo ids and addresses, looked up by name.
    grip_site: int
    object_site: int
    object_qposadr: int
    welded_body: int
    """The body the mocap weld drives (gymnasium-robotics resets the mocap onto it before every action)."""
    mocap_id: int
    finger_qposadr: np.ndarray
    """(2,) int: qpos addresses of the (r, l) finger joints."""
    finger_dofadr: np.ndarray
    actuator_qposadr: np.ndarray
    """(nu,) int: qpos address of each actuator's joint (PickAndPlace's position-controlled fingers)."""
    actuator_relative: np.ndarray
    """(nu,) bool: ctrl = joint qpos + action where True (actuators with a bias), ctrl = action elsewhere."""

    @property
    def dt(self) -> float:
        """Seconds per control step."""
        return self.n_substeps * self.model.opt.timestep

    @classmethod
    def from_gym(cls, task: str) -> FetchTask:
        if not is_batched_task(task):
            raise ValueError(f"task '{task}' has no batched backend; batched tasks: {', '.join(FETCH_TASKS)}")
        env = gym.make(task)
        try:
            fetch = env.unwrapped
            assert isinstance(fetch, MujocoFetchEnv), type(fetch)
            model = copy.copy(fetch.model)
            data = mujoco.MjData(model)
            data.time = fetch.initial_time
            data.qpos[:] = fetch.initial_qpos
            data.qvel[:] = fetch.initial_qvel
            spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
            initial_state = np.empty(mujoco.mj_stateSize(model, spec))
            mujoco.mj_getState(model, data, initial_state, spec)

            with_object = has_object(task)
            joint = mujoco.mjtObj.mjOBJ_JOINT
            fingers = [_required_id(model, joint, n) for n in FINGER_JOINTS]
            weld = int(np.flatnonzero(model.eq_type == mujoco.mjtEq.mjEQ_WELD)[0])
            mocap_body = _required_id(model, mujoco.mjtObj.mjOBJ_BODY, MOCAP_BODY)
            obj1, obj2 = model.eq_obj1id[weld], model.eq_obj2id[weld]
            welded = obj2 if obj1 == mocap_body else obj1
            return cls(
                task=task,
                model=model,
                layout=ObservationLayout.from_space(fetch.observation_space),
                initial_state=initial_state,
                initial_gripper_xpos=np.array(fetch.initial_gripper_xpos[:3], dtype=np.float64),
                height_offset=float(fetch.height_offset) if with_object else 0.0,
                has_object=with_object,
                block_gripper=bool(fetch.block_gripper),
                target_in_the_air=bool(fetch.target_in_the_air),
                target_offset=np.broadcast_to(np.asarray(fetch.target_offset, dtype=np.float64), (3,)).copy(),
                obj_range=float(fetch.obj_range),
                target_range=float(fetch.target_range),
                distance_threshold=float(fetch.distance_threshold),
                dense=fetch.reward_type == "dense",
                n_substeps=int(fetch.n_substeps),
                max_episode_steps=int(env.spec.max_episode_steps),
                grip_site=_required_id(model, mujoco.mjtObj.mjOBJ_SITE, GRIP_SITE),
                object_site=_required_id(model, mujoco.mjtObj.mjOBJ_SITE, OBJECT_SITE) if with_object else -1,
                object_qposadr=(
                    int(model.jnt_qposadr[_required_id(model, joint, OBJECT_JOINT)]) if with_object else -1
                ),
                welded_body=int(welded),
                mocap_id=int(model.body_mocapid[mocap_body]),
                finger_qposadr=model.jnt_qposadr[fingers].astype(np.intp),
                finger_dofadr=model.jnt_dofadr[fingers].astype(np.intp),
                actuator_qposadr=model.jnt_qposadr[model.actuator_trnid[:, 0]].astype(np.intp),
                actuator_relative=model.actuator_biastype != mujoco.mjtBias.mjBIAS_NONE,
            )
        finally:
            env.close()
