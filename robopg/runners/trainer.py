"""`Trainer`: one training run in a run directory: its config, task facts, policy, algorithm, generator and
hooks; checkpoints and ``Trainer.resume``; and the one per-iteration step (log, progress bar, periodic
checkpoint) that both runners go through.

``train`` hands the loop to the runner of the algorithm: robopg/runners/on_policy.py (collect -> update in this
process, every algorithm but A3C) or robopg/runners/a3c.py (worker processes on shared parameters).

Under torchrun (robopg/distributed.py) every rank builds a Trainer; rank 0 alone writes the run directory, and
every rank takes part in each checkpoint (it holds every rank's generators).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from robopg import distributed, seeds
from robopg.adr import AutomaticDomainRandomization
from robopg.algos import ALGORITHMS
from robopg.checkpoint import FINAL, LATEST, load_run_checkpoint, rng_state, save_checkpoint
from robopg.config import Algo, TrainConfig
from robopg.curriculum import AirGoalRamp, RandomizationRamp
from robopg.facts import TaskFacts, active_spec
from robopg.interrupts import Interrupted, StopRequests, signal_of
from robopg.logger import MetricsLogger
from robopg.modules import build_policy
from robopg.run_dir import (
    RunDirectory,
    check_new_run,
    check_resume_changes,
    check_steps_left,
    has_checkpoint,
    saved_config,
)
from robopg.runners import a3c, on_policy
from robopg.runners.iteration import Iteration, RunHook

RUNNERS = {Algo.A3C: a3c.run}
"""The runner of each algorithm that does not train synchronously (on_policy.run)."""


class Trainer:
    """Trains ``cfg.run.algo`` on ``cfg.env.task`` into ``run_dir``; ``Trainer.resume`` continues a run.

    Every torch draw of the run goes through one of two generators, both seeded by run.seed (under torchrun:
    ``seeds.rank_seed``) and saved in checkpoints: ``action_generator`` (policy init, then action sampling) and
    ``generator`` (the updates' minibatch shuffles). Nothing seeds or draws from torch's or numpy's global
    generators.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, progress: bool = True) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.world = distributed.setup(cfg.run)  # under torchrun: joins the process group; else this process alone
        torch.set_num_threads(cfg.run.torch_threads)
        seed = seeds.rank_seed(cfg.run.seed, self.world.rank)
        self.action_generator = seeds.generator(seed)
        self.generator = seeds.generator(seed)
        self.facts = TaskFacts.for_run(cfg)
        self.policy = build_policy(cfg, self.facts, self.action_generator).to(self.world.device)
        self.algo = ALGORITHMS[cfg.run.algo](self.policy, cfg.algorithm)
        self.adr = None
        if cfg.adr.enabled:
            self.adr = AutomaticDomainRandomization(active_spec(cfg.env), cfg.adr, cfg.env.num_envs, seed=seed,
                                                    pooled=self.world.distributed)
        self.curriculum = RandomizationRamp(active_spec(cfg.env), cfg.curriculum) if cfg.curriculum.enabled else None
        air_goals = AirGoalRamp(cfg.env) if cfg.env.air_goal_ramp_steps else None
        self.hooks: list[RunHook] = [hook for hook in (self.adr, self.curriculum, air_goals) if hook is not None]
        self.global_step = 0
        self.iteration = 0

    # ----- persistence -------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, overrides: dict[str, dict[str, Any]] | None = None,
               progress: bool = True) -> Trainer:
        """Rebuild the trainer from ``run_dir/config.json`` (plus overrides: only robopg/run_dir.py's RESUMABLE
        fields may change) and its latest checkpoint."""
        run_dir = Path(run_dir)
        saved = saved_config(run_dir)
        cfg = saved.replace(overrides) if overrides else saved
        check_resume_changes(run_dir, saved, cfg)
        # latest.pt, else (unreadable) the newest intact older checkpoint, with a warning; a damaged one is refused.
        checkpoint = load_run_checkpoint(run_dir, (LATEST, FINAL))
        trainer = cls(cfg, run_dir, progress=progress)
        trainer.load_state_dict(checkpoint.state, source=str(checkpoint.path))
        return trainer

    def state_dict(self) -> dict[str, Any]:
        """The run's state; under torchrun (a collective: every rank calls it) also every rank's generators and
        hook states under "ranks"."""
        state = {
            "policy": self.policy.state_dict(),
            "algo": self.algo.state_dict(),
            "algorithm": self.cfg.run.algo.value,
            "generator": self.generator.get_state(),
            "action_generator": self.action_generator.get_state(),
            # The process's global generator states, for the record: robopg draws nothing from them (checkpoints
            # written before action_generator existed sampled actions from the global torch one).
            "rng": rng_state(),
            "global_step": self.global_step,
            "iteration": self.iteration,
            **{hook.checkpoint_key: hook.state_dict() for hook in self.hooks},
            "config": self.cfg.to_dict(),
            "task": self.facts.to_dict(),
        }
        return self.world.with_rank_states(state, ["generator", "action_generator",
                                                   *(hook.checkpoint_key for hook in self.hooks)])

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint") -> None:
        state = self.world.own_rank_state(state, source)  # a run of several ranks: this rank's generators
        self.policy.load_state_dict(state["policy"])
        self.algo.load_state_dict(state["algo"])
        self.generator.set_state(state["generator"])
        self.action_generator.set_state(state.get("action_generator", state["rng"]["torch"]))
        self.global_step = int(state["global_step"])
        self.iteration = int(state["iteration"])
        for hook in self.hooks:
            if state.get(hook.checkpoint_key) is None:
                raise ValueError(f"{source} holds no '{hook.checkpoint_key}' state: the run was trained without it. "
                                 f"Fix: resume without the option that enables {hook.checkpoint_key}")
            hook.load_state_dict(state[hook.checkpoint_key])

    def save(self, final: bool = False) -> Path:
        """Write a checkpoint (rank 0; the other ranks hand it their states). Returns its path."""
        state = self.state_dict()
        if final:
            path = self.run_dir / FINAL
        else:
            path = self.run_dir / "checkpoints" / f"step_{self.global_step:010d}.pt"
        if not self.world.is_main:
            return path
        save_checkpoint(path, state)
        save_checkpoint(self.run_dir / LATEST, state)
        return path

    # ----- training ------------------------------------------------------------------------------------------
    def train(self) -> dict[str, float]:
        """Run until total_steps; returns the last iteration's metrics. The run directory is written from the first
        iteration on (robopg/run_dir.py), by rank 0 alone under torchrun; Ctrl-C or SIGTERM stops a single-process
        run at the end of the iteration in progress with a checkpoint (robopg/interrupts.py) and raises
        ``Interrupted`` (under torchrun the ranks stop where each one is: see ``interrupted``)."""
        resumed = (self.iteration, self.global_step) if self.iteration else None
        if resumed is None:
            check_new_run(self.run_dir)
        else:
            check_steps_left(self.run_dir, self.global_step, self.cfg.run.total_steps)
        self.world.broadcast_module(self.policy)  # every rank starts from rank 0's parameters
        runner = RUNNERS.get(self.cfg.run.algo, on_policy.run)
        files = RunDirectory(self.run_dir, self.cfg.to_dict(), resumed) if self.world.is_main else None
        bar = progress_bar(self.cfg, self.global_step, self.progress and self.world.is_main)
        stops = StopRequests(enabled=not self.world.distributed)
        try:
            with stops.installed():
                metrics = runner(self, lambda it: stops.iteration_end(
                    lambda: self.record(it, files.logger() if files is not None else None, bar)))
        except KeyboardInterrupt as err:
            raise self.interrupted(err, files is not None and files.opened) from None
        finally:
            bar.close()
            if files is not None:
                files.close()
        self.save(final=True)
        return metrics

    def record(self, iteration: Iteration, logger: MetricsLogger | None, bar: tqdm) -> dict[str, float]:
        """The one per-iteration step of every runner: count, log (metrics.csv, TensorBoard; rank 0, the only
        one with a logger), show, checkpoint. Returns the metrics logged."""
        self.global_step = max(self.global_step, iteration.global_step)
        self.iteration += 1
        metrics = {**iteration.metrics, "iteration": float(self.iteration)}
        for hook in self.hooks:
            metrics.update(hook.metrics())
        if logger is not None:
            logger.log(iteration.global_step, metrics)
            logger.histograms(iteration.global_step, iteration.histograms)
        show_progress(bar, iteration.steps, metrics)
        if self.cfg.run.checkpoint_every and self.iteration % self.cfg.run.checkpoint_every == 0:
            if logger is not None:
                logger.flush()  # the logs reach the checkpoint's step on disk before it does
            self.save()
        return metrics

    def interrupted(self, err: KeyboardInterrupt, trained: bool) -> Interrupted:
        """Save a checkpoint if the run stopped between iterations, and say how to continue. trained: this call
        trained an iteration (the run directory is written)."""
        if self.world.distributed:  # a checkpoint is a collective; the ranks stop wherever each one is
            return Interrupted(f"interrupted at step {self.global_step}; continue from the last periodic checkpoint "
                               f"with the same torchrun command and --resume {self.run_dir}", signal_of(err))
        signum = signal_of(err)
        name = Interrupted(signum=signum).signal_name
        resume = f"Continue with: robopg train --resume {self.run_dir}"
        if isinstance(err, Interrupted) and err.at_boundary and self.global_step >= self.cfg.run.total_steps:
            message = f"interrupted ({name}) after the last iteration; saved {self.save(final=True)}"
        elif isinstance(err, Interrupted) and err.at_boundary:
            message = f"interrupted ({name}) at step {self.global_step}; saved {self.save()}. {resume}"
        elif trained:  # a second signal, mid-iteration: that state is not saved
            message = f"interrupted ({name}) twice: stopped at once, mid-iteration, without saving. " + (
                f"{resume} (from its last checkpoint)" if has_checkpoint(self.run_dir)
                else f"It had written no checkpoint yet. Start it again with --out {self.run_dir}")
        elif self.iteration:
            message = f"interrupted ({name}) before the first iteration after resuming; {self.run_dir} is unchanged " \
                      f"(step {self.global_step}). {resume}"
        else:
            message = f"interrupted ({name}) during start-up, before the first iteration: nothing was written. " \
                      "Run the same command again"
        return Interrupted(message, signum, at_boundary=isinstance(err, Interrupted) and err.at_boundary)


def progress_bar(cfg: TrainConfig, global_step: int, enabled: bool) -> tqdm:
    return tqdm(total=cfg.run.total_steps, initial=min(global_step, cfg.run.total_steps), unit="step",
                disable=not enabled, dynamic_ncols=True)


def show_progress(bar: tqdm, steps: int, metrics: dict[str, float]) -> None:
    bar.update(steps)
    bar.set_postfix(
        sps=f"{metrics.get('steps_per_second', float('nan')):.0f}",
        ret=f"{metrics.get('episode_return', float('nan')):.2f}",
        success=f"{metrics.get('success_rate', float('nan')):.2f}",
    )
