"""The synchronous runner: collect T steps from N environments, let the algorithm update, record; repeat until
total_steps. Every algorithm but A3C runs here (robopg/runners/a3c.py runs that one).

Under torchrun every rank runs this loop on its own environments; an iteration's steps are those of all ranks,
and its metrics pool every rank's episodes (robopg/distributed.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch

from robopg import seeds
from robopg.collector import Collector
from robopg.config import RunConfig
from robopg.environment import make_training_env
from robopg.runners.iteration import Iteration, Record, RunState
from robopg.sequences import rollout_storage


def run(state: RunState, record: Record) -> dict[str, float]:
    """Train in this process until ``state.global_step`` reaches total_steps; returns the last metrics logged."""
    cfg, policy, world = state.cfg, state.policy, state.world
    with world.device:  # the storage's tensors on the policy's device
        storage = rollout_storage(policy, cfg.algorithm.rollout_steps, cfg.env.num_envs, state.facts.latency_column(cfg))
    seed = seeds.rank_env_seed(cfg.run.seed, world.rank, cfg.env.num_envs)
    env = make_training_env(cfg.env, cfg.env.num_envs, seed=seed, progress_steps=state.global_step,
                            nthread=world.env_threads)
    try:
        collector = Collector(env, policy, storage, state.facts.success_key, state.action_generator, state.hooks)
        for hook in state.hooks:
            hook.begin(env)
        collector.reset(seed=seeds.reset_seed(seed, state.iteration))
        for hook in state.hooks:
            hook.arm(env)
        metrics: dict[str, float] = {}
        while state.global_step < cfg.run.total_steps:
            metrics = record(iterate(state, collector))
    finally:
        env.close()
    return metrics


@contextlib.contextmanager
def update_threads(run: RunConfig) -> Iterator[None]:
    """torch's intra-op threads at ``run.update_threads`` for the update (the environments idle meanwhile), back
    to ``run.torch_threads`` for the collection."""
    torch.set_num_threads(run.update_threads or run.torch_threads)
    try:
        yield
    finally:
        torch.set_num_threads(run.torch_threads)


def iterate(state: RunState, collector: Collector) -> Iteration:
    """One rollout into the collector's storage and one update of the algorithm on it (on every rank)."""
    storage, world = collector.storage, state.world
    t0 = time.perf_counter()
    steps = collector.collect() * world.size  # every rank collects as many
    t1 = time.perf_counter()
    global_step = state.global_step + steps
    with update_threads(state.cfg.run):
        metrics = state.algo.update(storage, global_step / state.cfg.run.total_steps, state.generator)
    # After the update, so the rollout's log-probs and the update used the same statistics.
    state.policy.update_normalizers(storage.obs, storage.critic_obs)
    t2 = time.perf_counter()
    metrics = world.pool(metrics, collector.stats)  # every rank's episodes, before the hooks (curriculum gate)
    metrics.update(collector.stats.drain())
    metrics.update(steps_per_second=steps / (t2 - t0), collect_seconds=t1 - t0, update_seconds=t2 - t1)
    metrics.update(world.drain_sync_seconds())
    for hook in state.hooks:
        hook.iteration_ended(collector.env, steps, metrics)
    return Iteration(global_step, steps, metrics, collector.stats.drain_randomization())
