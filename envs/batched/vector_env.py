"""`BatchedFetchVecEnv`: the batched backend behind `envs.make_vec(..., backend="batched")`.

The same contract as the reference path (`SyncVectorEnv` of `make_env`, SAME_STEP autoreset): at an episode end
the returned obs is already the reset obs, `infos["final_obs"][i]` the true final observation and
`infos["final_info"]` that step's `is_success`, `clean_obs` and `privileged_params`; `infos["randomization"]`
holds the values sampled at each reset, `infos["clean_obs"]` / `infos["privileged_params"]` every env's
current ones. Environment i is seeded with seed + i, and each environment draws its episode (object, goal) and
its randomisation (`RandomizationStreams`, `ModelDynamics`) exactly as its reference twin does, and the
per-step corruption is the same `StepCorruption` the reference wrapper runs with N = 1, so equal seeds give
equal episodes on both backends. The physics runs batched in `RolloutEngine`; observations,
rewards, time limits, noise and latency are numpy over the batch. Per-environment Python runs at resets, and
per step only for what draws from an environment's own stream: action and observation noise, timestep
jitter, object pushes.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector.utils import batch_space

from envs.batched.engine import RolloutEngine
from envs.batched.fetch_task import POS_STEP, FetchTask
from envs.batched.observations import goal_distance, observe, reward, success
from envs.batched.sampling import sample_goal, sample_object_xy
from envs.batched.starts import START_SALT, EpisodeStarts, held_object_state
from envs.contacts import GRASPED
from envs.corruption import RandomizationStreams, StepCorruption
from envs.domain_randomization import CLEAN_OBS, PRIVILEGED_PARAMS, active_spec, model_modes, obs_mask, respec
from envs.dynamics import ActionScale, ModelDynamics
from envs.fetch import SUCCESS_KEY
from envs.randomization import RandomizationSpec


class BatchedFetchVecEnv(gym.vector.VectorEnv):
    """num_envs environments of one Fetch task, stepped together.

    spec: randomisation spec (already merged with any profile). nthread: native physics threads (default: all
    cores, at most num_envs). starts: training-only episode starts (envs/batched/starts.py; default: the task's). Observations (num_envs, obs_dim) float32, actions (num_envs, 4).
    Attributes: inactive_parameters, active_parameters (as DomainRandomization: the order of
    infos["privileged_params"], (N, P) float32), engine (RolloutEngine).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(
        self, task: str, num_envs: int, seed: int, spec: RandomizationSpec, nthread: int | None = None,
        starts: EpisodeStarts | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs is {num_envs}; use num_envs >= 1")
        self.fetch = fetch = FetchTask.from_gym(task)
        self.num_envs = n = num_envs
        dim = fetch.layout.dim
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self.layout = fetch.layout

        # Randomisation: one model per environment only where its dynamics change.
        self.randomization_spec = spec
        modes = model_modes(spec)
        models = [copy.copy(fetch.model) for _ in range(n)] if modes else [fetch.model] * n
        self.dynamics = [ModelDynamics(m, modes, ActionScale, fetch.n_substeps) for m in models]
        self.inactive_parameters = self.dynamics[0].inactive
        self.active_parameters = tuple(p for p in spec.names if p not in self.inactive_parameters)
        episode_spec = active_spec(spec, self.inactive_parameters)
        mask = obs_mask(fetch.layout)
        self.streams = [RandomizationStreams(episode_spec, mask, seed + i) for i in range(n)]
        self.corruption = StepCorruption(self.streams, self.single_action_space, dim)
        self._pending_seeds: list[int | None] = [seed + i for i in range(n)]
        self._task_rngs: list[np.random.Generator | None] = [None] * n

        if nthread is None:
            nthread = min(os.cpu_count() or 1, n)
        self.engine = RolloutEngine(fetch, models, nthread)
        self.starts = starts or EpisodeStarts()
        self.starts.check(fetch)
        self._held_state = held_object_state(fetch) if self.starts.near_grasp > 0 else None
        self._start_rngs = [np.random.default_rng([seed + i, START_SALT]) for i in range(n)]

        self.goal = np.zeros((n, 3))
        self.elapsed = np.zeros(n, dtype=np.int64)
        self._obs = np.zeros((n, dim), dtype=np.float32)
        self._clean_obs = np.zeros((n, dim), dtype=np.float32)
        self._privileged = np.zeros((n, len(self.active_parameters)), dtype=np.float32)
        self._action_scale = np.ones(n, dtype=np.float32)

    # ----- gymnasium VectorEnv API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """seed: None, an int (env i gets seed + i) or one seed per env. Returns (obs (N, dim), infos)."""
        if options:
            raise ValueError(f"the batched backend takes no reset options, got {sorted(options)}")
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs; pass one per env or an int")
        everyone = np.arange(self.num_envs)
        infos = self._reset_envs(everyone, seeds)
        return self._obs.copy(), infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """actions: (N, 4). Returns obs (N, dim) float32, rewards (N,) float64, terminated (N,) bool (never
        true: Fetch tasks only time out), truncated (N,) bool, infos."""
        action = self.corruption.actions(np.array(actions, dtype=np.float32).reshape(self.num_envs, 4))
        # BaseRobotEnv.step clips; _set_action scales the end-effector step (in the action's float32).
        action = np.clip(action, self.single_action_space.low, self.single_action_space.high)
        pos = action[:, :3] * self._action_scale[:, None]
        pos *= np.float32(POS_STEP)
        gripper = np.zeros(self.num_envs) if self.fetch.block_gripper else action[:, 3].astype(np.float64)
        self._perturb()
        self.engine.step(pos.astype(np.float64), gripper)
        grasped = self.engine.grasped.copy()

        self.elapsed += 1
        distance = goal_distance(self.engine, self.goal)
        rewards = reward(self.engine, distance)
        succeeded = success(self.engine, distance)
        observe(self.engine, self.goal, self._obs)
        everyone = np.arange(self.num_envs)
        self._observe(everyone)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = self.elapsed >= self.fetch.max_episode_steps
        done = np.flatnonzero(truncated)
        infos: dict[str, Any] = {}
        if done.size:
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in done:
                final_obs[i] = self._obs[i].copy()
            infos["final_obs"], infos["_final_obs"] = final_obs, truncated.copy()
            # As SyncVectorEnv batches the ended episodes' last step infos: zeros where no episode ended.
            ended = truncated[:, None]
            infos["final_info"] = {
                SUCCESS_KEY: np.where(truncated, succeeded, np.float32(0)),
                CLEAN_OBS: np.where(ended, self._clean_obs, np.float32(0)),
                PRIVILEGED_PARAMS: np.where(ended, self._privileged, np.float32(0)),
            }
            keys = (SUCCESS_KEY, CLEAN_OBS, PRIVILEGED_PARAMS)
            if self.reports_grasp:
                infos["final_info"][GRASPED] = np.where(truncated, grasped, np.float32(0))
                keys += (GRASPED,)
            for key in keys:
                infos["final_info"][f"_{key}"] = truncated.copy()
            infos["_final_info"] = truncated.copy()
            infos.update(self._reset_envs(done, [None] * done.size))
        # As SyncVectorEnv merges infos: an env that reset reports its reset info, not this step's.
        if done.size < self.num_envs:
            infos[SUCCESS_KEY] = np.where(truncated, np.float32(0), succeeded)
            infos[f"_{SUCCESS_KEY}"] = ~truncated
        infos.update(self._privileged_info(everyone))
        return self._obs.copy(), rewards, terminated, truncated, infos

    @property
    def reports_grasp(self) -> bool:
        """Whether infos carry "grasped" (tasks with an object and free fingers: FetchPickAndPlace)."""
        return self.fetch.has_object and not self.fetch.block_gripper

    def set_starts(self, starts: EpisodeStarts) -> None:
        """Episodes starting after this call use ``starts`` (a ramp of the in-air goal fraction, say)."""
        starts.check(self.fetch)
        if starts.near_grasp > 0 and self._held_state is None:
            self._held_state = held_object_state(self.fetch)
        self.starts = starts

    def set_env_spec(self, i: int, spec: RandomizationSpec) -> None:
        """Environment i samples its next episodes from `spec` (same parameters as at construction, see
        domain_randomization.respec); its running episode is unchanged."""
        if not 0 <= i < self.num_envs:
            raise ValueError(f"environment index {i} is out of range; this vector env has {self.num_envs} envs")
        new = respec(self.randomization_spec, self.inactive_parameters, spec)
        self.dynamics[i].modes.update(model_modes(new))
        self.streams[i].spec = new

    def close_extras(self, **kwargs: Any) -> None:
        self.engine.close()

    # ----- internals ----------------------------------------------------------------------------------------
    def _reset_envs(self, idx: np.ndarray, seeds: list[int | None]) -> dict[str, Any]:
        """New episodes for environments idx (seeds: one per idx entry). Writes their obs into self._obs."""
        fetch = self.fetch
        states = np.tile(fetch.initial_state, (idx.size, 1))
        qpos = states[:, self.engine.qpos_slice]
        values: list[dict[str, float]] = []
        for k, i in enumerate(idx):
            seed = seeds[k] if seeds[k] is not None else self._pending_seeds[i]
            self._pending_seeds[i] = None
            values.append(self._new_episode(i, seed))
            if seed is not None or self._task_rngs[i] is None:
                self._task_rngs[i] = seeding.np_random(seed)[0]
            if seed is not None:
                self._start_rngs[i] = np.random.default_rng([seed, START_SALT])
            rng = self._task_rngs[i]
            if fetch.has_object:
                qpos[k, fetch.object_qposadr : fetch.object_qposadr + 2] = sample_object_xy(fetch, rng)
                # Resting on the table: the start height follows table_height and object_size.
                qpos[k, fetch.object_qposadr + 2] += self.dynamics[i].object_start_shift
            self.goal[i] = sample_goal(fetch, rng, self.starts.air_goal_fraction(fetch))
            if self._held_state is not None and self._start_rngs[i].random() < self.starts.near_grasp:
                states[k] = self._held_state
        self.engine.reset(idx, states)
        self.elapsed[idx] = 0
        obs = observe(self.engine, self.goal, np.empty_like(self._obs))
        self._obs[idx] = obs[idx]
        self._observe(idx)
        return {
            "randomization": self._randomization_info(idx, values),
            "_randomization": self._mask(idx),
            **self._privileged_info(idx),
        }

    def _new_episode(self, i: int, seed: int | None) -> dict[str, float]:
        """Draw env i's episode values and apply them (model parameters, perturbations, noise, latency)."""
        values = self.corruption.new_episode(i, seed)
        dynamics = self.dynamics[i]
        dynamics.apply({n: v for n, v in values.items() if n in dynamics.targets}, self.streams[i].gravity_offset)
        self._privileged[i] = [values[n] for n in self.active_parameters]
        self.engine.dt[i] = dynamics.control_dt  # control_period
        self._action_scale[i] = dynamics.action_scale
        return values

    def _perturb(self) -> None:
        """Before the physics: this step's delay (timestep_jitter) and object kick (object_push), per env."""
        engine = self.engine
        for i, seconds in self.corruption.delays():
            dynamics = self.dynamics[i]
            dynamics.delay_step(seconds)
            engine.dt[i] = dynamics.control_dt
        for i, kick in self.corruption.kicks():
            engine.qvel[i, self.dynamics[i].push_dofs] += kick

    def _observe(self, idx: np.ndarray) -> None:
        """Keep the clean observations of idx (self._obs rows), then add per-episode bias and per-step noise for
        the environments of idx that randomise observations."""
        self._clean_obs[idx] = self._obs[idx]
        self.corruption.observe(self._obs, idx)

    def _privileged_info(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """clean_obs (N, dim) and privileged_params (N, P) with `_key` masks of idx, as SyncVectorEnv batches
        the sub-envs' infos (zeros outside idx); "grasped" (N,) likewise where the task reports it."""
        mask = self._mask(idx)
        rows = mask[:, None]
        grasp = {}
        if self.reports_grasp:
            grasp = {GRASPED: np.where(mask, self.engine.grasped, np.float32(0)), f"_{GRASPED}": mask.copy()}
        return {
            **grasp,
            CLEAN_OBS: np.where(rows, self._clean_obs, np.float32(0)),
            f"_{CLEAN_OBS}": mask,
            PRIVILEGED_PARAMS: np.where(rows, self._privileged, np.float32(0)),
            f"_{PRIVILEGED_PARAMS}": mask.copy(),
        }

    def _mask(self, idx: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[idx] = True
        return mask

    def _randomization_info(self, idx: np.ndarray, values: list[dict[str, float]]) -> dict[str, np.ndarray]:
        """name -> (N,) float64 values (0 where the env did not reset), plus `_name` masks, as SyncVectorEnv."""
        info: dict[str, np.ndarray] = {}
        for name in self.active_parameters:
            column = np.zeros(self.num_envs)
            column[idx] = [v[name] for v in values]
            info[name], info[f"_{name}"] = column, self._mask(idx)
        return info
