"""Vectorised envs with SAME_STEP autoreset: at an episode end infos["final_obs"][i] is the true final
flat observation, infos["final_info"] that step's info, and the returned obs is already the reset obs.

Backends: 'sync' and 'subprocess' run gymnasium-robotics envs one by one (the reference, any task); 'batched'
steps the Fetch tasks together in MuJoCo's thread pool (envs/batched/, same episodes for the same seed);
'auto' picks batched for the Fetch tasks and sync otherwise."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Literal

import gymnasium as gym

from envs.batched import BatchedFetchVecEnv, is_batched_task
from envs.randomization import RandomizationSpec, load_profile, load_spec
from envs.tasks import make_env

Backend = Literal["auto", "sync", "subprocess", "batched"]
BACKENDS = ("auto", "sync", "subprocess", "batched")


def make_vec(
    task: str,
    num_envs: int,
    seed: int,
    randomization: str | Path | RandomizationSpec = "none",
    profile: str | Path | RandomizationSpec | None = None,
    backend: Backend = "auto",
) -> gym.vector.VectorEnv:
    """num_envs copies of make_env(task); env i is built with seed + i, so both vec.reset(seed=seed) and a
    first vec.reset() reproduce. The first reset is left to the caller.

    backend: 'auto' (batched for the Fetch tasks, sync otherwise), 'sync' (one process), 'subprocess'
    (AsyncVectorEnv, shared memory, spawn context) or 'batched' (Fetch tasks only).
    Observations: (num_envs, obs_dim) float32.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs is {num_envs}; use num_envs >= 1")
    if backend not in BACKENDS:
        raise ValueError(f"backend '{backend}' is unknown; use one of {', '.join(BACKENDS)}")
    spec = load_spec(randomization)  # read files once here, not once per sub-env
    if profile is not None:
        spec = spec.merged_with(load_profile(profile))
    if backend == "auto":
        backend = "batched" if is_batched_task(task) else "sync"
    if backend == "batched":
        return BatchedFetchVecEnv(task, num_envs, seed, spec)
    # partial of a module-level function: picklable for the spawn context.
    fns = [partial(make_env, task, seed + i, spec) for i in range(num_envs)]
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if backend == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=same_step)
    return gym.vector.AsyncVectorEnv(fns, shared_memory=True, context="spawn", autoreset_mode=same_step)
