"""The asynchronous runner for A3C: worker processes, each with its own environments, collecting with the
shared rollout loop and updating shared-memory parameters (robopg/algos/a3c.py); the main process records
their iterations through the trainer's one step (log, progress, checkpoint) and shuts the workers down cleanly.

Workers are spawned (not forked: MuJoCo and torch threads do not survive a fork), ignore Ctrl-C (the main
process handles it and stops them), and report iterations, completion or their traceback through a queue.
Steps are counted in shared memory, so the run ends at total_steps summed over all workers.
"""

from __future__ import annotations

import queue
import signal
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.multiprocessing as mp

from robopg import seeds
from robopg.algos import A3C
from robopg.collector import Collector
from robopg.config import TrainConfig
from robopg.environment import make_training_env
from robopg.facts import TaskFacts
from robopg.modules import build_policy
from robopg.runners.iteration import Iteration, Record, RunState
from robopg.sequences import rollout_storage

JOIN_TIMEOUT_S = 30.0


@dataclass
class Shared:
    """What the main process and the workers share besides the parameters."""

    steps: Any  # mp.Value('q'): environment steps taken, all workers
    updates: Any  # mp.Array('q', workers): updates applied by each worker
    lock: Any  # guards the counters and the normaliser merge (not the parameters: those are Hogwild)
    stop: Any  # mp.Event: set by the main process to stop the workers
    messages: Any  # mp.Queue of (kind, rank, payload)


def run(state: RunState, record: Record) -> dict[str, float]:
    """Run A3C to total_steps with ``cfg.a3c.workers`` processes; the run's policy is the shared one."""
    if not isinstance(state.algo, A3C):
        raise TypeError(f"the a3c runner needs the A3C algorithm, got {type(state.algo).__name__}")
    cfg = state.cfg
    ctx = mp.get_context("spawn")
    shared = Shared(
        steps=ctx.Value("q", state.global_step, lock=False),
        updates=ctx.Array("q", cfg.a3c.workers, lock=False),
        lock=ctx.Lock(),
        stop=ctx.Event(),
        messages=ctx.Queue(),
    )
    procs = [
        ctx.Process(target=worker_main, name=f"robopg-a3c-{rank}", daemon=True,
                    args=(rank, cfg, state.facts, state.algo, shared, state.iteration))
        for rank in range(cfg.a3c.workers)
    ]
    metrics: dict[str, float] = {}
    try:
        for proc in procs:
            proc.start()
        for iteration in _reports(procs, shared, state.global_step):
            metrics = record(iteration)
    finally:
        _stop(procs, shared)
    state.global_step = int(shared.steps.value)
    return {**metrics, "worker_updates_min": float(min(shared.updates))}


def _reports(procs: list, shared: Shared, start_step: int) -> Iterator[Iteration]:
    """The workers' iterations as they arrive, until every worker is done; a worker's failure raises here."""
    finished: set[int] = set()
    last_time, last_step = time.perf_counter(), start_step
    while len(finished) < len(procs):
        try:
            kind, rank, payload = shared.messages.get(timeout=1.0)
        except queue.Empty:
            _check_alive(procs, finished)
            continue
        if kind == "error":
            raise RuntimeError(f"a3c worker {rank} failed:\n{payload}")
        if kind == "done":
            finished.add(rank)
            continue
        global_step, steps, metrics, histograms = payload
        now = time.perf_counter()
        metrics["steps_per_second"] = (global_step - last_step) / max(now - last_time, 1e-9)
        last_time, last_step = now, global_step
        yield Iteration(global_step, steps, metrics, histograms)


def worker_main(rank: int, cfg: TrainConfig, facts: TaskFacts, algo: A3C, shared: Shared,
                first_iteration: int) -> None:
    """One A3C worker: collect on its own envs, apply gradients to the shared policy, until the step budget."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _work(rank, cfg, facts, algo, shared, first_iteration)
        shared.messages.put(("done", rank, None))
    except BaseException:  # noqa: BLE001 - any failure must reach the main process, which re-raises it
        shared.messages.put(("error", rank, traceback.format_exc()))


def _work(rank: int, cfg: TrainConfig, facts: TaskFacts, algo: A3C, shared: Shared, first_iteration: int) -> None:
    torch.set_num_threads(1)
    per_worker = cfg.env.num_envs // cfg.a3c.workers
    seed = cfg.run.seed + per_worker * rank  # env i of worker w gets seed + w * per_worker + i: all distinct
    actions = seeds.generator(seeds.worker_seed(cfg.run.seed, rank))  # this worker's init and action sampling
    generator = seeds.generator(seeds.worker_seed(cfg.run.seed, rank))  # its updates' draws
    local = build_policy(cfg, facts, actions)
    algo.bind_worker(local)
    storage = rollout_storage(local, cfg.a3c.rollout_steps, per_worker, facts.latency_column(cfg))
    env = make_training_env(cfg.env, per_worker, seed=seed)
    try:
        collector = Collector(env, local, storage, facts.success_key, actions)
        collector.reset(seed=seeds.reset_seed(seed, first_iteration))
        while not shared.stop.is_set():
            with shared.lock:
                if shared.steps.value >= cfg.run.total_steps:
                    break
            algo.sync_local()
            t0 = time.perf_counter()
            steps = collector.collect()
            t1 = time.perf_counter()
            with shared.lock:
                shared.steps.value += steps
                global_step = shared.steps.value
            metrics = algo.update(storage, min(global_step / cfg.run.total_steps, 1.0), generator)
            with shared.lock:
                algo.shared_policy.update_normalizers(storage.obs, storage.critic_obs)
                shared.updates[rank] += 1
            metrics.update(collector.stats.drain())
            metrics.update(worker=float(rank), collect_seconds=t1 - t0, update_seconds=time.perf_counter() - t1)
            histograms = collector.stats.drain_randomization()
            shared.messages.put(("metrics", rank, (global_step, steps, metrics, histograms)))
    finally:
        env.close()


def _check_alive(procs: list, finished: set[int]) -> None:
    for rank, proc in enumerate(procs):
        if rank not in finished and proc.exitcode is not None:
            raise RuntimeError(f"a3c worker {rank} exited with code {proc.exitcode} without reporting")


def _stop(procs: list, shared: Shared) -> None:
    """Stop the workers and reap them: drain the queue (a worker cannot exit while its queued messages are
    unflushed), join, and terminate any that does not finish in time. Leaves no stray process."""
    shared.stop.set()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        try:
            while True:
                shared.messages.get_nowait()
        except queue.Empty:
            pass
        for proc in procs:
            proc.join(timeout=0.05)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5.0)
