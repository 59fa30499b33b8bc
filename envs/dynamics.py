"""Applying sampled dynamics values to an env's MuJoCo model, with every target looked up by name.

`ModelDynamics` captures the nominal values when it is built; `apply(values)` restores all of them, then
applies the new values, so successive episodes never compound. A parameter whose target the model lacks
(object_mass on FetchReach, gripper_gain outside FetchPickAndPlace, anything on a non-MuJoCo env) is
inactive: it is not applied and appears in `inactive`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium_robotics.envs.fetch.fetch_env import MujocoFetchEnv

from envs.randomization import Mode

OBJECT = "object0"  # Fetch's manipulated object: body and geom share the name
TABLE = "table0"
GRIPPER_ACTUATORS = ("robot0:l_gripper_finger_joint", "robot0:r_gripper_finger_joint")
ROBOT_PREFIX = "robot0:"
# Fetch's mobile-base slides carry 1e11 damping to hold the base still; they are not part of the arm.
BASE_JOINTS = ("robot0:slide0", "robot0:slide1", "robot0:slide2")
DOFS_PER_JOINT = {
    mujoco.mjtJoint.mjJNT_FREE: 6,
    mujoco.mjtJoint.mjJNT_BALL: 3,
    mujoco.mjtJoint.mjJNT_SLIDE: 1,
    mujoco.mjtJoint.mjJNT_HINGE: 1,
}


def _new_value(nominal: np.ndarray, value: float, mode: Mode) -> np.ndarray:
    return nominal * value if mode is Mode.SCALED else np.full_like(nominal, value)


class _ModelField:
    """One named model property: `array[index]`, plus fields scaled by the same ratio (mass -> inertia,
    position-actuator kp -> its bias term -kp)."""

    def __init__(self, array: np.ndarray, index: tuple, coupled: tuple[tuple[np.ndarray, tuple], ...] = ()):
        self.array, self.index, self.coupled = array, index, coupled
        self.nominal = array[index].copy()
        self.coupled_nominal = tuple(a[i].copy() for a, i in coupled)

    def restore(self) -> None:
        self.array[self.index] = self.nominal
        for (a, i), nominal in zip(self.coupled, self.coupled_nominal, strict=True):
            a[i] = nominal

    def set(self, value: float, mode: Mode) -> None:
        new = _new_value(self.nominal, value, mode)
        self.array[self.index] = new
        ratio = np.divide(new, self.nominal, out=np.ones_like(new), where=self.nominal != 0)
        for (a, i), nominal in zip(self.coupled, self.coupled_nominal, strict=True):
            a[i] = nominal * ratio.reshape(ratio.shape + (1,) * (nominal.ndim - ratio.ndim))


class ActionScale:
    """Scales Fetch's end-effector step (the action's first three components) by `scale`. The batched backend
    reads `scale` directly; `_MocapStepScale` makes a gymnasium-robotics env apply it."""

    def __init__(self) -> None:
        self.scale = 1.0

    def restore(self) -> None:
        self.scale = 1.0

    def set(self, value: float, mode: Mode) -> None:
        self.scale = float(value)  # nominal is 1, so scaled and absolute agree


class _MocapStepScale(ActionScale):
    """gymnasium-robotics clips the action to [-1, 1] in step() and then hard-codes `pos_ctrl *= 0.05` inside
    `_set_action`, so the only place to scale the real motion is the action reaching `_set_action`; we wrap
    that method on this env instance only."""

    def __init__(self, fetch_env: MujocoFetchEnv):
        super().__init__()
        original = fetch_env._set_action

        def scaled_set_action(action: np.ndarray) -> None:
            action = action.copy()
            action[:3] *= self.scale
            original(action)

        fetch_env._set_action = scaled_set_action


def _id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str) -> int:
    return mujoco.mj_name2id(model, obj, name)


def _joint_dofs(model: mujoco.MjModel) -> np.ndarray:
    """Fetch: dofs of the robot0 joints except the base slides. Other models: every dof."""
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or "" for j in range(model.njnt)]
    if not any(n.startswith(ROBOT_PREFIX) for n in names):
        return np.arange(model.nv)
    dofs = []
    for j, name in enumerate(names):
        if name.startswith(ROBOT_PREFIX) and name not in BASE_JOINTS:
            start = model.jnt_dofadr[j]
            dofs.extend(range(start, start + DOFS_PER_JOINT[mujoco.mjtJoint(model.jnt_type[j])]))
    return np.array(dofs, dtype=np.intp)


Target = _ModelField | ActionScale


def _model_targets(model: mujoco.MjModel) -> dict[str, Callable[[], _ModelField | None]]:
    """parameter name -> builder of its target in `model` (the builder returns None where the model lacks it)."""

    def object_mass() -> _ModelField | None:
        body = _id(model, mujoco.mjtObj.mjOBJ_BODY, OBJECT)
        if body < 0:
            return None
        idx = np.array([body])
        return _ModelField(model.body_mass, (idx,), coupled=((model.body_inertia, (idx,)),))

    def object_friction() -> _ModelField | None:
        geom = _id(model, mujoco.mjtObj.mjOBJ_GEOM, OBJECT)
        return None if geom < 0 else _ModelField(model.geom_friction, (np.array([geom]), 0))

    def table_friction() -> _ModelField | None:
        body = _id(model, mujoco.mjtObj.mjOBJ_BODY, TABLE)
        geoms = np.flatnonzero(model.geom_bodyid == body) if body >= 0 else np.array([], dtype=np.intp)
        return _ModelField(model.geom_friction, (geoms, 0)) if geoms.size else None

    def gripper_gain() -> _ModelField | None:
        ids = [_id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in GRIPPER_ACTUATORS]
        ids = np.array([i for i in ids if i >= 0], dtype=np.intp)
        if not ids.size:
            return None
        # Position actuators: force = kp * ctrl - kp * qpos, i.e. gainprm[0] = kp and biasprm[1] = -kp.
        return _ModelField(model.actuator_gainprm, (ids, 0), coupled=((model.actuator_biasprm, (ids, 1)),))

    def joint_damping() -> _ModelField | None:
        dofs = _joint_dofs(model)
        return _ModelField(model.dof_damping, (dofs,)) if dofs.size else None

    return {
        "object_mass": object_mass,
        "object_friction": object_friction,
        "table_friction": table_friction,
        "gripper_gain": gripper_gain,
        "joint_damping": joint_damping,
    }


class ModelDynamics:
    """Applies per-episode dynamics values to one MuJoCo model (and the Fetch end-effector step).

    model: the model to change in place, None for a non-MuJoCo env (every parameter is then inactive).
    modes: parameter name -> Mode for every dynamics parameter of the spec (see randomization.PARAMETERS).
    action_scale: builds the `action_scale` target, None where the env has no Fetch mocap step. Only called
    when the spec names action_scale, so an env is patched only when it has to be.
    Both backends build their targets here: `for_env` for a gymnasium env, the constructor for the batched
    backend's per-environment models.
    """

    def __init__(
        self,
        model: mujoco.MjModel | None,
        modes: Mapping[str, Mode],
        action_scale: Callable[[], ActionScale] | None = None,
    ):
        builders: dict[str, Callable[[], Target | None]] = dict(_model_targets(model)) if model else {}
        if action_scale is not None:
            builders["action_scale"] = action_scale
        self.modes = dict(modes)
        self.targets: dict[str, Target] = {}
        for name in modes:
            target = builders[name]() if name in builders else None
            if target is not None:
                self.targets[name] = target
        self.active = tuple(self.targets)
        self.inactive = tuple(name for name in modes if name not in self.targets)

    @classmethod
    def for_env(cls, env: gym.Env, modes: Mapping[str, Mode]) -> ModelDynamics:
        unwrapped = env.unwrapped
        model = getattr(unwrapped, "model", None)
        fetch = isinstance(unwrapped, MujocoFetchEnv)
        return cls(
            model if isinstance(model, mujoco.MjModel) else None,
            modes,
            (lambda: _MocapStepScale(unwrapped)) if fetch else None,
        )

    @property
    def action_scale(self) -> float:
        """This episode's end-effector step scale (1 where action_scale is inactive)."""
        target = self.targets.get("action_scale")
        return target.scale if isinstance(target, ActionScale) else 1.0

    def apply(self, values: Mapping[str, float]) -> None:
        """Restore every target's nominal value, then set the given active parameters."""
        for target in self.targets.values():
            target.restore()
        for name, value in values.items():
            self.targets[name].set(value, self.modes[name])
