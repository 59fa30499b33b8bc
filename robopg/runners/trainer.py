"""`Trainer`: one training run in a run directory: its config, task facts, policy, algorithm, generator and
hooks; checkpoints and ``Trainer.resume``; and the one per-iteration step (log, progress bar, periodic
checkpoint) that both runners go through.

``train`` hands the loop to the runner of the algorithm: robopg/runners/on_policy.py (collect -> update in this
process, every algorithm but A3C) or robopg/runners/a3c.py (worker processes on shared parameters).

Under torchrun (robopg/distributed.py) every rank builds a Trainer; rank 0 alone writes the run directory, and
every rank takes part in each checkpoint (it holds every rank's generators).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from robopg import distributed, seeds
from robopg.adr import AutomaticDomainRandomization
from robopg.algos import ALGORITHMS
from robopg.checkpoint import (
    FINAL,
    LATEST,
    atomic_write_bytes,
    load_run_checkpoint,
    rng_state,
    save_checkpoint,
)
from robopg.config import Algo, TrainConfig
from robopg.curriculum import AirGoalRamp, RandomizationRamp
from robopg.facts import TaskFacts, active_spec
from robopg.logger import MetricsLogger
from robopg.modules import build_policy
from robopg.runners import a3c, on_policy
from robopg.runners.iteration import Iteration, RunHook

CONFIG_FILE = "config.json"
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
        """Rebuild the trainer from ``run_dir/config.json`` (plus overrides) and its latest checkpoint."""
        run_dir = Path(run_dir)
        config_path = run_dir / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{run_dir} has no {CONFIG_FILE}; --resume needs a run directory made by robopg train")
        cfg = TrainConfig.from_dict(json.loads(config_path.read_text()), source=str(config_path))
        if overrides:
            cfg = cfg.replace(overrides)
        trainer = cls(cfg, run_dir, progress=progress)
        # latest.pt, else (unreadable) the newest intact older checkpoint, with a warning; a damaged one is refused.
        checkpoint = load_run_checkpoint(run_dir, (LATEST, FINAL))
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
        """Run until total_steps; returns the last iteration's metrics."""
        self.world.broadcast_module(self.policy)  # every rank starts from rank 0's parameters
        logger = None
        if self.world.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.run_dir / CONFIG_FILE,
                               lambda f: f.write(json.dumps(self.cfg.to_dict(), indent=2).encode()))
            logger = MetricsLogger(self.run_dir)
        runner = RUNNERS.get(self.cfg.run.algo, on_policy.run)
        bar = progress_bar(self.cfg, self.global_step, self.progress and self.world.is_main)
        try:
            metrics = runner(self, lambda iteration: self.record(iteration, logger, bar))
        except KeyboardInterrupt:
            raise self.interrupted() from None
        finally:
            bar.close()
            if logger is not None:
                logger.close()
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
            self.save()
        return metrics

    def interrupted(self) -> KeyboardInterrupt:
        """Save a checkpoint and say how to continue. Under torchrun the ranks are interrupted wherever each one
        is, so no checkpoint is taken together: the run continues from its last periodic one."""
        if self.world.distributed:
            return KeyboardInterrupt(f"interrupted at step {self.global_step}; continue from the last periodic "
                                     f"checkpoint with the same torchrun command and --resume {self.run_dir}")
        path = self.save()
        return KeyboardInterrupt(
            f"interrupted at step {self.global_step}; saved {path}. Continue with: robopg train --resume {self.run_dir}"
        )


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
