"""Training-only episode starts for the batched backend: exploration aids that a policy never meets in evaluation.

- near_grasp: a fraction of resets start with the object already held between the fingers at the gripper's start
  pose (as MuJoCo Playground's pick tasks start some episodes near a grasp), so carrying to the goal is learned
  before grasping is discovered from the table.
- air_goal: the fraction of in-air goals on tasks that have them (FetchPickAndPlace: the task's own is 0.5);
  starting lower and ramping up to the task's fraction lets lifting be learned after placing on the table.

Evaluation (`robopg evaluate`, SimRobot) builds the reference env and never uses either: success is measured on
the task's own start and goal distribution.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import mujoco
import numpy as np

from envs.batched.fetch_task import ROT_DELTA, FetchTask
from envs.contacts import GraspDetector

TASK_AIR_GOAL_FRACTION = 0.5  # gymnasium-robotics' _sample_goal: half the goals in the air where target_in_the_air
START_SALT = 0x57A27  # the start stream is its own, so object and goal draws stay those of the reference env
CLOSE_STEPS, SETTLE_STEPS = 15, 25  # control steps to close the fingers (no gravity), then to hold under gravity


@dataclass(frozen=True)
class EpisodeStarts:
    """How training episodes start (module docstring). The defaults are the task's own distribution."""

    near_grasp: float = 0.0
    air_goal: float | None = None
    """None: the task's own (0.5 in the air where the task has in-air goals)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.near_grasp <= 1.0:
            raise ValueError(f"near_grasp must be a fraction in [0, 1], got {self.near_grasp}")
        if self.air_goal is not None and not 0.0 <= self.air_goal <= 1.0:
            raise ValueError(f"air_goal must be a fraction in [0, 1] or None (the task's own), got {self.air_goal}")

    @property
    def is_default(self) -> bool:
        return self.near_grasp == 0.0 and self.air_goal is None

    def air_goal_fraction(self, task: FetchTask) -> float:
        if not task.target_in_the_air:
            return 0.0
        return TASK_AIR_GOAL_FRACTION if self.air_goal is None else self.air_goal

    def check(self, task: FetchTask) -> None:
        if self.near_grasp > 0 and (not task.has_object or task.block_gripper):
            raise ValueError(f"near-grasp starts need a task with an object and free fingers (FetchPickAndPlace), "
                             f"not {task.task}. Fix: set near_grasp_fraction = 0")
        if self.air_goal is not None and not task.target_in_the_air:
            raise ValueError(f"{task.task} has no in-air goals. Fix: leave air_goal_fraction unset (-1)")


def held_object_state(task: FetchTask) -> np.ndarray:
    """(nstate,) mjSTATE_FULLPHYSICS state with the object held between the fingers at the gripper's start pose:
    the object is put at the grip site, the fingers close on it without gravity, then it is held under gravity.
    Raises if the object is not grasped at the end (a model this procedure does not fit)."""
    model = copy.copy(task.model)
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    mujoco.mj_setState(model, data, task.initial_state, spec)
    mujoco.mj_forward(model, data)
    data.qpos[task.object_qposadr : task.object_qposadr + 3] = data.site_xpos[task.grip_site]
    data.qpos[task.object_qposadr + 3 : task.object_qposadr + 7] = (1.0, 0.0, 0.0, 0.0)
    data.qpos[task.finger_qposadr] = model.jnt_range[model.dof_jntid[task.finger_dofadr], 1]  # open
    mujoco.mj_forward(model, data)
    gravity = model.opt.gravity.copy()
    model.opt.gravity[:] = 0.0
    for step in range(CLOSE_STEPS + SETTLE_STEPS):
        if step == CLOSE_STEPS:
            model.opt.gravity[:] = gravity
        data.mocap_pos[task.mocap_id] = data.xpos[task.welded_body]
        data.mocap_quat[task.mocap_id] = data.xquat[task.welded_body] + ROT_DELTA
        data.ctrl[:] = data.qpos[task.actuator_qposadr] - 1.0  # the closing command, clamped by ctrlrange
        mujoco.mj_step(model, data, nstep=task.n_substeps)
    if not GraspDetector(model).grasped(data):
        raise RuntimeError(f"{task.task}: the object was not held after closing the fingers on it")
    data.time = task.initial_state[0]
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    return state
