"""`RolloutEngine`: N Fetch simulations advanced one control step at a time by `mujoco.rollout`.

One control step is `n_substeps` mj_step calls with a fixed control (gripper ctrl, mocap pose), run for all N
environments in MuJoCo's native thread pool (`mujoco.rollout.Rollout`, kept for the engine's lifetime; the GIL
is released while it runs). Each environment has its own `MjModel` when its dynamics are randomised.

After the physics, the engine reads what observations and the next action need (site positions, the object's
orientation, site Jacobians, the welded gripper body's pose) with one kinematics pass per environment
(`mj_kinematics` + `mj_comPos`, ~4 us, against ~700 us of physics per control step). The pass is evaluated at
the same state the reference gymnasium-robotics env reads them from:

- Reach, Push, Slide (`block_gripper`): the env zeroes the finger joints after the substeps and calls
  mj_forward, so everything is read at the final state, fingers zeroed.
- PickAndPlace: no forward after the substeps, so positions, orientations and Jacobians are those mj_step left
  behind, i.e. of the state *before* the last substep, while joint positions and velocities are the final ones.

What is not reproduced: the solver warm start. `mujoco.rollout` does not return `qacc_warmstart`, so every
control step starts the constraint solver from zero accelerations instead of the previous substep's. Newton
converges to its tolerance (1e-8) either way and the states differ by ~1e-14 after a step; over an episode
that grows only as far as the reference's own sensitivity to such perturbations lets it (see
docs/batched_engine.md and tests/envs/test_batched_faithfulness.py). Recovering the exact warm start from
the last two substeps (qacc = a + h M^-1 B a for Euler with implicit damping) was tried and changed nothing
measurable, so the engine keeps the simpler zero start.
"""

from __future__ import annotations

import time

import mujoco
import mujoco.rollout
import numpy as np

from envs.batched.fetch_task import ROT_DELTA, FetchTask
from envs.contacts import GraspDetector

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS.value
# Grip site to object centre beyond which no finger can touch the object: fully open finger offset (~0.06 m) +
# finger box half-diagonal (0.041) + the largest randomised object half-diagonal (0.048), with margin.
GRASP_RANGE = 0.2
# Per-substep inputs: the gripper fingers' position targets and the mocap pose that drives the arm's weld.
CONTROL_SPEC = (
    mujoco.mjtState.mjSTATE_CTRL.value
    | mujoco.mjtState.mjSTATE_MOCAP_POS.value
    | mujoco.mjtState.mjSTATE_MOCAP_QUAT.value
)


def _state_slice(model: mujoco.MjModel, part: mujoco.mjtState) -> slice:
    """Where `part` lies inside a mjSTATE_FULLPHYSICS vector (components are stored in bit order)."""
    start = 0
    for bit in (1 << k for k in range(FULLPHYSICS.bit_length())):
        if not bit & FULLPHYSICS:
            continue
        size = mujoco.mj_stateSize(model, bit)
        if bit == part.value:
            return slice(start, start + size)
        start += size
    raise ValueError(f"{part.name} is not part of mjSTATE_FULLPHYSICS")


class RolloutEngine:
    """Physics and kinematics of N Fetch environments.

    models: N models of identical structure (one object may repeat where nothing is randomised).
    nthread: native threads stepping the batch (0 or 1: the calling thread).
    After `reset` / `step`: state (N, nstate), qpos / qvel views of it, and the kinematics readouts
    site_xpos (N, 2, 3) [grip, object], object_xmat (N, 3, 3), site_jacp (N, 2, 3, nv), object_jacr (N, 3, nv),
    and on tasks with free fingers and an object grasped (N,) float32 (envs/contacts.py: a collision pass at the
    same state, as the reference reads its contact list).
    dt: (N,) seconds of each environment's latest control step (n_substeps x its model's timestep), which
    observations scale velocities by; whoever changes a model's timestep updates it.
    """

    def __init__(self, task: FetchTask, models: list[mujoco.MjModel], nthread: int):
        self.task = task
        self.models = models
        self.num_envs = n = len(models)
        model = task.model
        nv, nsub = model.nv, task.n_substeps
        self.nthread = nthread
        self._rollout = mujoco.rollout.Rollout(nthread=nthread if nthread > 1 else 0)
        self._datas = [mujoco.MjData(model) for _ in range(max(1, nthread))]

        self.dt = np.full(n, task.dt)
        self.state = np.tile(task.initial_state, (n, 1))
        self.qpos_slice = _state_slice(model, mujoco.mjtState.mjSTATE_QPOS)
        self.qpos = self.state[:, self.qpos_slice]
        self.qvel_slice = _state_slice(model, mujoco.mjtState.mjSTATE_QVEL)
        self.qvel = self.state[:, self.qvel_slice]
        self.warmstart = np.zeros((n, nv))
        self._control = np.zeros((n, nsub, mujoco.mj_stateSize(model, CONTROL_SPEC)))
        self._trajectory = np.zeros((n, nsub, self.state.shape[1]))

        # Kinematics readouts.
        self.site_xpos = np.zeros((n, 2, 3))
        self.object_xmat = np.tile(np.eye(3), (n, 1, 1))
        self.site_jacp = np.zeros((n, 2, 3, nv))
        self.object_jacr = np.zeros((n, 3, nv))
        self.welded_xpos = np.zeros((n, 3))
        self.welded_xquat = np.zeros((n, 4))
        self._kin = mujoco.MjData(model)
        self._sites = [task.grip_site] + ([task.object_site] if task.has_object else [])
        self.grasped = np.zeros(n, dtype=np.float32)
        self._grasp = GraspDetector(model) if task.has_object and not task.block_gripper else None
        self.timings = {"physics": 0.0, "kinematics": 0.0}
        """Seconds spent so far in mujoco.rollout and in the kinematics readouts (for benchmarks)."""

    def reset(self, idx: np.ndarray, states: np.ndarray) -> None:
        """Start environments idx from states (len(idx), nstate), as mj_resetData + set state + mj_forward."""
        self.state[idx] = states
        self.warmstart[idx] = 0.0
        self._read_kinematics(idx, self.state)

    def step(self, pos_delta: np.ndarray, gripper: np.ndarray) -> None:
        """One control step for every environment.

        pos_delta: (N, 3) float64 mocap displacement in metres. gripper: (N,) float64 finger command.
        As gymnasium-robotics' mocap_set_action / ctrl_set_action: the mocap is first put back onto the welded
        body, then moved by pos_delta; position actuators get ctrl = joint position + command.
        """
        task, nu = self.task, self.task.model.nu
        row = self._control[:, 0]
        if nu:
            row[:, :nu] = gripper[:, None] + np.where(task.actuator_relative, self.qpos[:, task.actuator_qposadr], 0.0)
        row[:, nu : nu + 3] = self.welded_xpos + pos_delta
        row[:, nu + 3 : nu + 7] = self.welded_xquat + ROT_DELTA
        self._control[:, 1:] = row[:, None]
        t0 = time.perf_counter()
        self._rollout.rollout(
            self.models, self._datas, self.state, self._control,
            control_spec=CONTROL_SPEC, skip_checks=True, nstep=task.n_substeps,
            initial_warmstart=self.warmstart, state=self._trajectory,
        )
        t1 = time.perf_counter()
        self.state[:] = self._trajectory[:, -1]
        everyone = np.arange(self.num_envs)
        if task.block_gripper:
            # _step_callback: fingers held at 0, then mj_forward.
            self.qpos[:, task.finger_qposadr] = 0.0
            self._read_kinematics(everyone, self.state)
        else:
            before_last = self._trajectory[:, -2] if task.n_substeps > 1 else self.state
            self._read_kinematics(everyone, before_last)
        self.timings["physics"] += t1 - t0
        self.timings["kinematics"] += time.perf_counter() - t1

    def _read_kinematics(self, idx: np.ndarray, source: np.ndarray) -> None:
        """Positions, orientation, Jacobians and welded-body pose of environments idx at source[i]'s qpos."""
        task, d = self.task, self._kin
        site_xpos, site_xmat, xpos, xquat = d.site_xpos, d.site_xmat, d.xpos, d.xquat
        sites, welded = self._sites, task.welded_body
        qpos_part = self.qpos_slice
        jacp, jacr = self.site_jacp, self.object_jacr
        for i in idx:
            m = self.models[i]
            d.qpos[:] = source[i, qpos_part]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            mujoco.mj_jacSite(m, d, jacp[i, 0], None, task.grip_site)
            if task.has_object:
                mujoco.mj_jacSite(m, d, jacp[i, 1], jacr[i], task.object_site)
                self.object_xmat[i] = site_xmat[task.object_site].reshape(3, 3)
            self.site_xpos[i, : len(sites)] = site_xpos[sites]
            self.welded_xpos[i] = xpos[welded]
            self.welded_xquat[i] = xquat[welded]
            if self._grasp is not None:
                # The collision pass (~45 us) only where a grasp is geometrically possible at all.
                near = np.linalg.norm(site_xpos[task.grip_site] - site_xpos[task.object_site]) < GRASP_RANGE
                if near:
                    mujoco.mj_collision(m, d)
                self.grasped[i] = near and self._grasp.grasped(d)

    def close(self) -> None:
        if self._rollout.rollout_ is not None:
            self._rollout.close()
