"""Vectorised envs with SAME_STEP autoreset: at an episode end infos["final_obs"][i] is the true final
flat observation, infos["final_info"] that step's info, and the returned obs is already the reset obs.

Privileged information for an asymmetric critic, on every backend: reset and step infos carry
"clean_obs" (N, obs_dim) float32, the observations before noise and bias, and "privileged_params" (N, P)
float32, each env's values this episode of the parameters `privileged_names(vec)`; at an episode end
infos["final_info"] holds the ended episode's last ones (masks "_clean_obs", "_privileged_params" as gymnasium).
`set_env_spec(vec, i, spec)` changes what env i samples its next episodes from (automatic domain randomisation).

Backends: 'sync' and 'subprocess' run gymnasium-robotics envs one by one (the reference, any task); 'batched'
steps the Fetch tasks together in MuJoCo's thread pool (envs/batched/, same episodes for the same seed);
'auto' picks batched for the Fetch tasks and sync otherwise."""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from pathlib import Path

import gymnasium as gym

from envs.batched import BatchedFetchVecEnv, is_batched_task
from envs.batched.starts import EpisodeStarts
from envs.domain_randomization import DomainRandomization
from envs.randomization import RandomizationSpec, load_profile, load_spec
from envs.tasks import make_env


class Backend(StrEnum):
    """How `make_vec` steps its environments (the `--backend` of robopg train)."""

    AUTO = "auto"  # batched for the Fetch tasks, sync otherwise
    SYNC = "sync"  # SyncVectorEnv: the reference envs one by one, in this process
    SUBPROCESS = "subprocess"  # AsyncVectorEnv: one process per env, shared memory, spawn context
    BATCHED = "batched"  # the Fetch tasks stepped together in MuJoCo's thread pool (envs/batched/)


def make_vec(
    task: str,
    num_envs: int,
    seed: int,
    randomization: str | Path | RandomizationSpec = "none",
    profile: str | Path | RandomizationSpec | None = None,
    backend: Backend | str = Backend.AUTO,
    starts: EpisodeStarts | None = None,
    nthread: int | None = None,
) -> gym.vector.VectorEnv:
    """num_envs copies of make_env(task); env i is built with seed + i, so both vec.reset(seed=seed) and a
    first vec.reset() reproduce. The first reset is left to the caller.

    backend: 'auto' (batched for the Fetch tasks, sync otherwise), 'sync' (one process), 'subprocess'
    (AsyncVectorEnv, shared memory, spawn context) or 'batched' (Fetch tasks only).
    Observations: (num_envs, obs_dim) float32.
    starts: training-only episode starts (near-grasp resets, in-air goal fraction; envs/batched/starts.py),
    batched backend only; None or the defaults: the task's own.
    nthread: physics threads of the batched backend (None: one per core, up to num_envs); the other backends
    step in their own processes or the calling thread.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs is {num_envs}; use num_envs >= 1")
    if backend not in set(Backend):
        raise ValueError(f"backend '{backend}' is unknown; use one of {', '.join(Backend)}")
    spec = load_spec(randomization)  # read files once here, not once per sub-env
    if profile is not None:
        spec = spec.merged_with(load_profile(profile))
    if backend == Backend.AUTO:
        backend = Backend.BATCHED if is_batched_task(task) else Backend.SYNC
    if backend == Backend.BATCHED:
        return BatchedFetchVecEnv(task, num_envs, seed, spec, starts=starts, nthread=nthread)
    if starts is not None and not starts.is_default:
        raise ValueError(
            f"near-grasp starts and in-air goal fractions are training options of the batched backend, not of "
            f"'{backend}'. Fix: use backend auto or batched (task {task})"
        )
    # partial of a module-level function: picklable for the spawn context.
    fns = [partial(make_env, task, seed + i, spec) for i in range(num_envs)]
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if backend == Backend.SYNC:
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=same_step)
    return gym.vector.AsyncVectorEnv(fns, shared_memory=True, context="spawn", autoreset_mode=same_step)


def privileged_names(vec: gym.vector.VectorEnv) -> tuple[str, ...]:
    """Names of the P values in infos["privileged_params"], in order: the env's active randomisation
    parameters (a spec's parameters without those the task has no target for). vec may be wrapped."""
    base = vec.unwrapped
    if isinstance(base, BatchedFetchVecEnv):
        return base.active_parameters
    return tuple(base.get_attr("active_parameters")[0])


def set_env_spec(vec: gym.vector.VectorEnv, i: int, spec: RandomizationSpec) -> None:
    """Environment i samples its next episodes from `spec` (its running episode is unchanged).

    spec must have the construction spec's parameters (ranges, distributions and modes may change; parameters
    inactive on this task may be left out and are dropped anyway). Backends 'sync' and 'batched' (vec may be
    wrapped); the subprocess backend keeps its envs in other processes and is refused. Equal seeds and equal
    sequences of set_env_spec calls give equal values on both backends.
    """
    base = vec.unwrapped
    if isinstance(base, BatchedFetchVecEnv):
        base.set_env_spec(i, spec)
        return
    if not isinstance(base, gym.vector.SyncVectorEnv):
        raise ValueError(
            f"set_env_spec needs the env objects in this process, but {type(base).__name__} runs them elsewhere. "
            "Fix: use backend sync or batched"
        )
    if not 0 <= i < base.num_envs:
        raise ValueError(f"environment index {i} is out of range; this vector env has {base.num_envs} envs")
    env = base.envs[i]
    while not isinstance(env, DomainRandomization):
        if not isinstance(env, gym.Wrapper):
            raise ValueError(
                f"environment {i} has no DomainRandomization wrapper. Fix: build the vector env with envs.make_vec"
            )
        env = env.env
    env.set_spec(spec)
