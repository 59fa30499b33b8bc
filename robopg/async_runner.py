"""Asynchronous training for A3C: worker processes, each with its own environments, collecting with the
shared rollout loop and updating shared-memory parameters (robopg/algos/a3c.py); the main process logs,
checkpoints and shuts the workers down cleanly.

Workers are spawned (not forked: MuJoCo and torch threads do not survive a fork), ignore Ctrl-C (the main
process handles it and stops them), and report metrics, completion or their traceback through a queue.
Steps are counted in shared memory, so the run ends at total_steps summed over all workers.
"""

from __future__ import annotations

import queue
import signal
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.multiprocessing as mp

from robopg.collector import Collector
from robopg.environment import make_training_env
from robopg.logger import MetricsLogger
from robopg.storage import RolloutStorage

if TYPE_CHECKING:
    from robopg.algos.a3c import A3C
    from robopg.config import TrainConfig
    from robopg.trainer import Trainer

JOIN_TIMEOUT_S = 30.0


@dataclass
class Shared:
    """What the main process and the workers share besides the parameters."""

    steps: Any  # mp.Value('q'): environment steps taken, all workers
    updates: Any  # mp.Array('q', workers): updates applied by each worker
    lock: Any  # guards the counters and the normaliser merge (not the parameters: those are Hogwild)
    stop: Any  # mp.Event: set by the main process to stop the workers
    messages: Any  # mp.Queue of (kind, rank, payload)


def worker_main(rank: int, cfg: TrainConfig, facts: dict[str, Any], algo: A3C, shared: Shared,
                first_iteration: int) -> None:
    """One A3C worker: collect on its own envs, apply gradients to the shared policy, until the step budget."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _work(rank, cfg, facts, algo, shared, first_iteration)
        shared.messages.put(("done", rank, None))
    except BaseException:  # noqa: BLE001 - any failure must reach the main process, which re-raises it
        shared.messages.put(("error", rank, traceback.format_exc()))


def _work(rank: int, cfg: TrainConfig, facts: dict[str, Any], algo: A3C, shared: Shared,
          first_iteration: int) -> None:
    from robopg.trainer import build_policy

    torch.set_num_threads(1)
    per_worker = cfg.env.num_envs // cfg.a3c.workers
    seed = cfg.run.seed + per_worker * rank  # env i of worker w gets seed + w * per_worker + i: all distinct
    torch.manual_seed(cfg.run.seed * 1000 + rank)
    np.random.seed(cfg.run.seed * 1000 + rank)
    generator = torch.Generator().manual_seed(cfg.run.seed * 1000 + rank)
    local = build_policy(cfg, facts)
    algo.bind_worker(local)
    storage = RolloutStorage(cfg.a3c.rollout_steps, per_worker, local.obs_dim, local.act_dim,
                             local.critic_obs_dim if local.asymmetric else None)
    env = make_training_env(cfg.env, per_worker, seed=seed)
    try:
        collector = Collector(env, local, storage, facts["success_key"])
        collector.reset(seed=seed + 7919 * first_iteration)
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
            shared.messages.put(("metrics", rank, (global_step, steps, metrics)))
    finally:
        env.close()


def train_async(trainer: Trainer) -> dict[str, float]:
    """Run A3C to total_steps with ``cfg.a3c.workers`` processes; the trainer's policy is the shared one."""
    from robopg.trainer import progress_bar, show_progress

    cfg = trainer.cfg
    workers = cfg.a3c.workers
    ctx = mp.get_context("spawn")
    shared = Shared(
        steps=ctx.Value("q", trainer.global_step, lock=False),
        updates=ctx.Array("q", workers, lock=False),
        lock=ctx.Lock(),
        stop=ctx.Event(),
        messages=ctx.Queue(),
    )
    procs = [
        ctx.Process(target=worker_main, name=f"robopg-a3c-{rank}", daemon=True,
                    args=(rank, cfg, trainer.facts, trainer.algo, shared, trainer.iteration))
        for rank in range(workers)
    ]
    logger = MetricsLogger(trainer.run_dir)
    bar = progress_bar(cfg, trainer.global_step, trainer.progress)
    metrics: dict[str, float] = {}
    finished: set[int] = set()
    last_time, last_step = time.perf_counter(), trainer.global_step
    try:
        for proc in procs:
            proc.start()
        while len(finished) < workers:
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
            global_step, steps, metrics = payload
            now = time.perf_counter()
            metrics["steps_per_second"] = (global_step - last_step) / max(now - last_time, 1e-9)
            last_time, last_step = now, global_step
            trainer.global_step = max(trainer.global_step, global_step)
            trainer.iteration += 1
            metrics["iteration"] = float(trainer.iteration)
            logger.log(global_step, metrics)
            show_progress(bar, steps, metrics)
            if cfg.run.checkpoint_every and trainer.iteration % cfg.run.checkpoint_every == 0:
                trainer.save()
    except KeyboardInterrupt:
        _stop(procs, shared)
        raise trainer.interrupted() from None
    finally:
        _stop(procs, shared)
        bar.close()
        logger.close()
    trainer.global_step = int(shared.steps.value)
    trainer.save(final=True)
    metrics["worker_updates_min"] = float(min(shared.updates))
    return metrics


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
