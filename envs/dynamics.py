"""Applying sampled dynamics values and perturbations to an env's MuJoCo model, every target looked up by name.

`ModelDynamics` captures the nominal values when it is built; `apply(values)` restores all of them, then
applies the new values, so successive episodes never compound. A parameter whose target the model lacks
(object_mass on FetchReach, gripper_gain outside FetchPickAndPlace, anything on a non-MuJoCo env) is
inactive: it is not applied and appears in `inactive`.

Perturbations (randomization.Kind.PERTURBATION) have targets too, so they are inactive where the model lacks
what they disturb; their random draws come from the caller's streams (domain_randomization.py), which hands
them over: the gravity offset in `apply`, a step's delay in `delay_step`, object kicks at `push_dofs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium_robotics.envs.fetch.fetch_env import MujocoFetchEnv

from envs.randomization import Mode

OBJECT = "object0"  # Fetch's manipulated object: body and geom share the name; its free joint is the body's
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


class _TableHeight(_ModelField):
    """table0's body z position. `start_shift`: how far the table top (and an object resting on it) moved."""

    def __init__(self, model: mujoco.MjModel, body: int):
        super().__init__(model.body_pos, (np.array([body]), 2))

    @property
    def start_shift(self) -> float:
        return float((self.array[self.index] - self.nominal)[0])


class _ObjectSize:
    """object0's geom half-sizes, with the bounds MuJoCo culls contacts by scaled alike (else a grown object
    passes through things): the geom's bounding sphere radius and the half-size part of its bounding box, and
    the half-sizes of its body's BVH nodes (used against bodies with several geoms; object0's body holds this
    one geom at its origin, so its nodes scale with it).
    `start_shift`: the change of the geom's half-height, which lifts an object resting on the table."""

    def __init__(self, model: mujoco.MjModel, geom: int):
        self.model, self.geom = model, geom
        self.size = model.geom_size[geom].copy()
        self.rbound = float(model.geom_rbound[geom])
        self.half_box = model.geom_aabb[geom, 3:].copy()
        body = model.geom_bodyid[geom]
        self.nodes = np.arange(model.body_bvhadr[body], model.body_bvhadr[body] + model.body_bvhnum[body])
        self.node_half_box = model.bvh_aabb[self.nodes, 3:].copy()
        self.start_shift = 0.0

    def restore(self) -> None:
        self.set(1.0, Mode.SCALED)

    def set(self, value: float, mode: Mode) -> None:
        assert mode is Mode.SCALED, "randomization.MODES allows object_size only scaled"
        m, g = self.model, self.geom
        m.geom_size[g] = self.size * value
        m.geom_rbound[g] = self.rbound * value
        m.geom_aabb[g, 3:] = self.half_box * value
        m.bvh_aabb[self.nodes, 3:] = self.node_half_box * value
        self.start_shift = float(self.half_box[2] * value - self.half_box[2])


class _Timestep:
    """model.opt.timestep. control_period sets it for the episode (`base`); timestep_jitter lengthens single
    control steps: `delay(seconds)` spreads the extra time over the control step's n_substeps mj_steps."""

    def __init__(self, model: mujoco.MjModel, n_substeps: int):
        self.model, self.n_substeps = model, n_substeps
        self.nominal = self.base = float(model.opt.timestep)

    def restore(self) -> None:
        self.base = self.nominal
        self.model.opt.timestep = self.base

    def set(self, value: float, mode: Mode) -> None:
        self.base = self.nominal * value if mode is Mode.SCALED else value / self.n_substeps
        self.model.opt.timestep = self.base

    def delay(self, seconds: float) -> None:
        self.model.opt.timestep = self.base + seconds / self.n_substeps


class _StepDelay:
    """timestep_jitter's target: the model timestep, restored to the episode's base at every episode start.
    Its value (the mean delay) is drawn from per step by the caller, who passes each delay to `delay`."""

    def __init__(self, timestep: _Timestep):
        self.timestep = timestep

    def restore(self) -> None:
        self.timestep.restore()

    def set(self, value: float, mode: Mode) -> None:
        pass  # control_period sets the base; the delays arrive per step

    def delay(self, seconds: float) -> None:
        self.timestep.delay(seconds)


class _Gravity:
    """model.opt.gravity: nominal plus a per-episode offset (drawn by the caller, whose std is the value)."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self.nominal = model.opt.gravity.copy()

    def restore(self) -> None:
        self.model.opt.gravity[:] = self.nominal

    def set(self, value: float, mode: Mode) -> None:
        pass  # the std only shapes the caller's draw; `offset` applies the drawn vector

    def offset(self, delta: np.ndarray) -> None:
        self.model.opt.gravity[:] = self.nominal + delta


class _ObjectKick:
    """object_push / object_push_probability: the object's free joint, whose first two dofs are its world-frame
    x, y velocity (MuJoCo free joints: linear velocity in the world frame, then angular in the body frame).
    The caller adds the kicks it draws to qvel[dofs] before a physics step; nothing changes in the model."""

    def __init__(self, dofadr: int):
        self.dofs = np.array([dofadr, dofadr + 1], dtype=np.intp)

    def restore(self) -> None:
        pass

    def set(self, value: float, mode: Mode) -> None:
        pass


class _ObjectStart:
    """Fetch's object start height: gymnasium-robotics resets qpos to `initial_qpos` (the settled state after
    setup) every episode, so the object rests on the table only if its start z follows the table top and its
    half-height. `set(shift)` moves it by shift metres from nominal."""

    def __init__(self, fetch_env: MujocoFetchEnv, qposadr: int):
        self.fetch_env = fetch_env
        self.z = qposadr + 2
        self.nominal = float(fetch_env.initial_qpos[self.z])

    def set(self, shift: float) -> None:
        self.fetch_env.initial_qpos[self.z] = self.nominal + shift


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


def model_id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str) -> int:
    """The id of the named object of the model, -1 where it has none (every MuJoCo id in envs is looked up so)."""
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


def object_free_joint(model: mujoco.MjModel) -> int:
    """Id of object0's free joint, -1 where the model has no object0 body or it is not free."""
    body = model_id(model, mujoco.mjtObj.mjOBJ_BODY, OBJECT)
    joint = model.body_jntadr[body] if body >= 0 else -1
    return int(joint) if joint >= 0 and model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_FREE else -1


def _link_bodies(model: mujoco.MjModel) -> np.ndarray:
    """Fetch: the robot0: bodies. Other models: every body with mass. Never the world or a mocap body (a mocap
    body is moved by the controller, its mass takes no part in the dynamics)."""
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) or "" for b in range(model.nbody)]
    bodies = np.arange(1, model.nbody)
    bodies = bodies[model.body_mocapid[bodies] < 0]
    robot = np.array([b for b in bodies if names[b].startswith(ROBOT_PREFIX)], dtype=np.intp)
    return robot if robot.size else bodies[model.body_mass[bodies] > 0]


Target = (
    _ModelField | _TableHeight | _ObjectSize | _Timestep | _StepDelay | _Gravity | _ObjectKick | ActionScale
)


def _model_targets(model: mujoco.MjModel, n_substeps: int | None) -> dict[str, Callable[[], Target | None]]:
    """parameter name -> builder of its target in `model` (the builder returns None where the model lacks it).
    n_substeps: mj_steps per control step, None where unknown (control_period, timestep_jitter inactive)."""
    timestep = _Timestep(model, n_substeps) if n_substeps else None

    def object_mass() -> _ModelField | None:
        body = model_id(model, mujoco.mjtObj.mjOBJ_BODY, OBJECT)
        if body < 0:
            return None
        idx = np.array([body])
        return _ModelField(model.body_mass, (idx,), coupled=((model.body_inertia, (idx,)),))

    def object_friction() -> _ModelField | None:
        geom = model_id(model, mujoco.mjtObj.mjOBJ_GEOM, OBJECT)
        return None if geom < 0 else _ModelField(model.geom_friction, (np.array([geom]), 0))

    def object_damping() -> _ModelField | None:
        joint = object_free_joint(model)
        if joint < 0:
            return None
        start = model.jnt_dofadr[joint]
        dofs = np.arange(start, start + DOFS_PER_JOINT[mujoco.mjtJoint.mjJNT_FREE])
        return _ModelField(model.dof_damping, (dofs,))

    def object_size() -> _ObjectSize | None:
        geom = model_id(model, mujoco.mjtObj.mjOBJ_GEOM, OBJECT)
        return None if geom < 0 else _ObjectSize(model, geom)

    def table_friction() -> _ModelField | None:
        body = model_id(model, mujoco.mjtObj.mjOBJ_BODY, TABLE)
        geoms = np.flatnonzero(model.geom_bodyid == body) if body >= 0 else np.array([], dtype=np.intp)
        return _ModelField(model.geom_friction, (geoms, 0)) if geoms.size else None

    def table_height() -> _TableHeight | None:
        body = model_id(model, mujoco.mjtObj.mjOBJ_BODY, TABLE)
        return None if body < 0 else _TableHeight(model, body)

    def link_mass() -> _ModelField | None:
        bodies = _link_bodies(model)
        if not bodies.size:
            return None
        return _ModelField(model.body_mass, (bodies,), coupled=((model.body_inertia, (bodies,)),))

    def gripper_gain() -> _ModelField | None:
        ids = [model_id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in GRIPPER_ACTUATORS]
        ids = np.array([i for i in ids if i >= 0], dtype=np.intp)
        if not ids.size:
            return None
        # Position actuators: force = kp * ctrl - kp * qpos, i.e. gainprm[0] = kp and biasprm[1] = -kp.
        return _ModelField(model.actuator_gainprm, (ids, 0), coupled=((model.actuator_biasprm, (ids, 1)),))

    def joint_damping() -> _ModelField | None:
        dofs = _joint_dofs(model)
        return _ModelField(model.dof_damping, (dofs,)) if dofs.size else None

    def object_kick() -> _ObjectKick | None:
        joint = object_free_joint(model)
        return None if joint < 0 else _ObjectKick(int(model.jnt_dofadr[joint]))

    return {
        "object_mass": object_mass,
        "object_friction": object_friction,
        "object_damping": object_damping,
        "object_size": object_size,
        "table_friction": table_friction,
        "table_height": table_height,
        "link_mass": link_mass,
        "gripper_gain": gripper_gain,
        "joint_damping": joint_damping,
        "control_period": lambda: timestep,
        "gravity_perturbation": lambda: _Gravity(model),
        "timestep_jitter": lambda: None if timestep is None else _StepDelay(timestep),
        "object_push": object_kick,
        "object_push_probability": object_kick,
    }


class ModelDynamics:
    """Applies per-episode dynamics values and perturbations to one MuJoCo model (and the Fetch end-effector
    step).

    model: the model to change in place, None for a non-MuJoCo env (every parameter is then inactive).
    modes: parameter name -> Mode for every dynamics and perturbation parameter of the spec (see
    domain_randomization.model_modes).
    action_scale: builds the `action_scale` target, None where the env has no Fetch mocap step. Only called
    when the spec names action_scale, so an env is patched only when it has to be.
    n_substeps: mj_steps per control step (None: unknown; control_period and timestep_jitter are inactive).
    object_start: builds the hook that moves a gymnasium-robotics Fetch env's object start height (only called
    when object_size or table_height is active). The batched backend passes none and reads
    `object_start_shift` itself.
    Both backends build their targets here: `for_env` for a gymnasium env, the constructor for the batched
    backend's per-environment models.
    """

    def __init__(
        self,
        model: mujoco.MjModel | None,
        modes: Mapping[str, Mode],
        action_scale: Callable[[], ActionScale] | None = None,
        n_substeps: int | None = None,
        object_start: Callable[[], _ObjectStart] | None = None,
    ):
        builders: dict[str, Callable[[], Target | None]] = dict(_model_targets(model, n_substeps)) if model else {}
        if action_scale is not None:
            builders["action_scale"] = action_scale
        self.model = model
        self.n_substeps = n_substeps
        self.modes = dict(modes)
        self.targets: dict[str, Target] = {}
        for name in modes:
            target = builders[name]() if name in builders else None
            if target is not None:
                self.targets[name] = target
        self.active = tuple(self.targets)
        self.inactive = tuple(name for name in modes if name not in self.targets)
        moves_start = object_start is not None and {"object_size", "table_height"} & set(self.targets)
        self._object_start = object_start() if moves_start else None

    @classmethod
    def for_env(cls, env: gym.Env, modes: Mapping[str, Mode]) -> ModelDynamics:
        unwrapped = env.unwrapped
        model = getattr(unwrapped, "model", None)
        if not isinstance(model, mujoco.MjModel):
            return cls(None, modes)
        fetch = isinstance(unwrapped, MujocoFetchEnv)
        # mj_steps per env step: gymnasium-robotics' n_substeps, gymnasium MujocoEnv's frame_skip.
        n_substeps = getattr(unwrapped, "n_substeps", None) or getattr(unwrapped, "frame_skip", None)
        joint = object_free_joint(model)
        object_start = None
        if fetch and joint >= 0:
            qposadr = int(model.jnt_qposadr[joint])
            object_start = lambda: _ObjectStart(unwrapped, qposadr)  # noqa: E731
        return cls(
            model,
            modes,
            (lambda: _MocapStepScale(unwrapped)) if fetch else None,
            int(n_substeps) if n_substeps else None,
            object_start,
        )

    @property
    def action_scale(self) -> float:
        """This episode's end-effector step scale (1 where action_scale is inactive)."""
        target = self.targets.get("action_scale")
        return target.scale if isinstance(target, ActionScale) else 1.0

    @property
    def object_start_shift(self) -> float:
        """Metres the object's start height moves this episode: the table top's rise plus the object's growth
        in half-height (0 where neither table_height nor object_size is active)."""
        shift = 0.0
        for name in ("table_height", "object_size"):
            target = self.targets.get(name)
            if isinstance(target, _TableHeight | _ObjectSize):
                shift += target.start_shift
        return shift

    @property
    def push_dofs(self) -> np.ndarray | None:
        """(2,) qvel addresses of the object's x, y velocity where object_push is active, else None."""
        target = self.targets.get("object_push")
        return target.dofs if isinstance(target, _ObjectKick) else None

    @property
    def control_dt(self) -> float:
        """Seconds the next control step lasts at the model's current timestep (n_substeps x timestep)."""
        assert self.model is not None and self.n_substeps is not None
        return self.n_substeps * self.model.opt.timestep

    def apply(self, values: Mapping[str, float], gravity_offset: np.ndarray | None = None) -> None:
        """Restore every target's nominal value, then set the given active parameters.

        gravity_offset: (3,) m/s^2 added to nominal gravity where gravity_perturbation is active.
        """
        for target in self.targets.values():
            target.restore()
        for name, value in values.items():
            self.targets[name].set(value, self.modes[name])
        gravity = self.targets.get("gravity_perturbation")
        if isinstance(gravity, _Gravity) and gravity_offset is not None:
            gravity.offset(gravity_offset)
        if self._object_start is not None:
            self._object_start.set(self.object_start_shift)

    def delay_step(self, seconds: float) -> None:
        """Make the next control step last `seconds` longer than the episode's control period (timestep_jitter)."""
        target = self.targets["timestep_jitter"]
        assert isinstance(target, _StepDelay)
        target.delay(seconds)
