"""Vectorised envs with SAME_STEP autoreset: at an episode end infos["final_obs"][i] is the true final
flat observation, infos["final_info"] that step's info, and the returned obs is already the reset obs."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Literal

import gymnasium as gym

from envs.randomization import RandomizationSpec, load_profile, load_spec
from envs.tasks import make_env

Backend = Literal["sync", "subprocess"]


def make_vec(
    task: str,
    num_envs: int,
    seed: int,
    randomization: str | Path | RandomizationSpec = "none",
    profile: str | Path | RandomizationSpec | None = None,
    backend: Backend = "sync",
) -> gym.vector.VectorEnv:
    """num_envs copies of make_env(task); env i is built with seed + i, so both vec.reset(seed=seed) and a
    first vec.reset() reproduce. The first reset is left to the caller.

    backend: 'sync' (one process) or 'subprocess' (AsyncVectorEnv, shared memory, spawn context).
    Observations: (num_envs, obs_dim) float32.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs is {num_envs}; use num_envs >= 1")
    spec = load_spec(randomization)  # read files once here, not once per sub-env
    if profile is not None:
        spec = spec.merged_with(load_profile(profile))
    # partial of a module-level function: picklable for the spawn context.
    fns = [partial(make_env, task, seed + i, spec) for i in range(num_envs)]
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if backend == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=same_step)
    if backend == "subprocess":
        return gym.vector.AsyncVectorEnv(fns, shared_memory=True, context="spawn", autoreset_mode=same_step)
    raise ValueError(f"backend '{backend}' is unknown; use 'sync' or 'subprocess'")
