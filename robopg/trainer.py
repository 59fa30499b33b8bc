"""The synchronous trainer: collect T steps from N environments (robopg/collector.py), let the algorithm
update, log, checkpoint; ``Trainer.resume`` continues a run.

Every algorithm shares this collection, the storage, the observation normaliser, logging and checkpoints;
it only supplies ``update()``. A3C runs the same collection in worker processes (robopg/async_runner.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import envs
from robopg.adr import AutomaticDomainRandomization
from robopg.algos import ALGORITHMS
from robopg.checkpoint import (
    FINAL,
    LATEST,
    atomic_write_bytes,
    load_run_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from robopg.collector import Collector
from robopg.config import Algo, EnvConfig, TrainConfig
from robopg.curriculum import RandomizationRamp
from robopg.environment import episode_starts, make_training_env
from robopg.logger import MetricsLogger
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage

CONFIG_FILE = "config.json"


def task_facts(info: envs.TaskInfo, cfg: TrainConfig) -> dict[str, Any]:
    """What export needs to know about the task, stored in every checkpoint (JSON-serialisable).

    "privileged": names of the asymmetric critic's extra inputs after the noiseless observation (the parameters
    the randomisation spec actually varies on this task), None without an asymmetric critic."""
    privileged = active_parameters(cfg.env) if cfg.policy.asymmetric_critic else None
    return {
        "task": info.task,
        "privileged": privileged,
        "layout": [[name, size] for name, size in info.layout.fields],
        "action_low": [float(x) for x in info.action_low],
        "action_high": [float(x) for x in info.action_high],
        "control_dt": float(info.control_dt),
        "success_key": info.success_key,
    }


def active_parameters(env_cfg: EnvConfig) -> list[str]:
    """The parameters of the run's randomisation spec that the task has a target for (spec order)."""
    env = envs.make_env(env_cfg.task, seed=0, randomization=env_cfg.randomization)
    try:
        return list(env.get_wrapper_attr("active_parameters"))
    finally:
        env.close()


def active_spec(env_cfg: EnvConfig) -> envs.RandomizationSpec:
    """The run's randomisation spec without the parameters the task has no target for: ADR and the curriculum
    manage only what this task can vary (a pin on a parameter the task lacks would measure nothing)."""
    spec = envs.load_spec(env_cfg.randomization)
    active = active_parameters(env_cfg)
    return envs.RandomizationSpec(tuple(p for p in spec.parameters if p.name in active), spec.source)


def build_policy(cfg: TrainConfig, facts: dict[str, Any]) -> GaussianActorCritic:
    obs_dim = sum(size for _, size in facts["layout"])
    act_dim = len(facts["action_low"])
    # The actor reads K stacked observations and M past actions (envs/history.py); the robot still sends one
    # raw observation (facts["layout"]) and the runtime stacks it the same way.
    input_dim = cfg.env.obs_history * obs_dim + cfg.env.action_history * act_dim
    privileged = facts.get("privileged")
    critic_obs_dim = None if privileged is None else obs_dim + len(privileged)
    return GaussianActorCritic(
        input_dim, act_dim, np.array(facts["action_low"]), np.array(facts["action_high"]), cfg.policy, critic_obs_dim
    )


class Trainer:
    """Trains ``cfg.run.algo`` on ``cfg.env.task`` into ``run_dir``; ``Trainer.resume`` continues a run."""

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, progress: bool = True) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        torch.set_num_threads(cfg.run.torch_threads)
        torch.manual_seed(cfg.run.seed)
        np.random.seed(cfg.run.seed)

        self.facts = task_facts(envs.describe_task(cfg.env.task), cfg)
        self.policy = build_policy(cfg, self.facts)
        self.algo = ALGORITHMS[cfg.run.algo](self.policy, cfg.algorithm)
        self.storage = RolloutStorage(
            cfg.algorithm.rollout_steps, cfg.env.num_envs, self.policy.obs_dim, self.policy.act_dim,
            self.policy.critic_obs_dim if self.policy.asymmetric else None,
        )
        self.generator = torch.Generator().manual_seed(cfg.run.seed)
        self.adr = None
        if cfg.adr.enabled:
            self.adr = AutomaticDomainRandomization(active_spec(cfg.env), cfg.adr, cfg.env.num_envs,
                                                    seed=cfg.run.seed)
        self.curriculum = None
        if cfg.curriculum.enabled:
            self.curriculum = RandomizationRamp(active_spec(cfg.env), cfg.curriculum)
        self.global_step = 0
        self.iteration = 0
        self.env: Any = None

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
        state = load_run_checkpoint(run_dir, (LATEST, FINAL)).state
        trainer.policy.load_state_dict(state["policy"])
        trainer.algo.load_state_dict(state["algo"])
        trainer.generator.set_state(state["generator"])
        set_rng_state(state["rng"])
        trainer.global_step = int(state["global_step"])
        trainer.iteration = int(state["iteration"])
        if trainer.adr is not None:
            trainer.adr.load_state_dict(state["adr"])
        if trainer.curriculum is not None:
            trainer.curriculum.load_state_dict(state["curriculum"])
        return trainer

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "algo": self.algo.state_dict(),
            "algorithm": self.cfg.run.algo.value,
            "generator": self.generator.get_state(),
            "rng": rng_state(),
            "global_step": self.global_step,
            "iteration": self.iteration,
            "adr": self.adr.state_dict() if self.adr is not None else None,
            "curriculum": self.curriculum.state_dict() if self.curriculum is not None else None,
            "config": self.cfg.to_dict(),
            "task": self.facts,
        }

    def save(self, final: bool = False) -> Path:
        state = self.state_dict()
        if final:
            path = self.run_dir / FINAL
        else:
            path = self.run_dir / "checkpoints" / f"step_{self.global_step:010d}.pt"
        save_checkpoint(path, state)
        save_checkpoint(self.run_dir / LATEST, state)
        return path

    # ----- training ------------------------------------------------------------------------------------------
    def train(self) -> dict[str, float]:
        """Run until total_steps; returns the last iteration's metrics."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.run_dir / CONFIG_FILE, lambda f: f.write(json.dumps(cfg.to_dict(), indent=2).encode()))
        if cfg.run.algo is Algo.A3C:
            from robopg.async_runner import train_async

            return train_async(self)
        logger = MetricsLogger(self.run_dir)
        self.env = make_training_env(cfg.env, cfg.env.num_envs, seed=cfg.run.seed, progress_steps=self.global_step)
        ranges = self.adr if self.adr is not None else self.curriculum  # who sets the randomisation ranges
        collector = Collector(self.env, self.policy, self.storage, self.facts["success_key"], listener=ranges)
        if ranges is not None:
            ranges.begin(self.env)
        # A resumed run cannot restore mid-episode simulator state; it starts fresh episodes from a seed derived
        # from the iteration, so resuming the same checkpoint twice gives the same run.
        collector.reset(seed=cfg.run.seed + 7919 * self.iteration)
        if ranges is not None:
            ranges.arm(self.env)
        bar = progress_bar(cfg, self.global_step, self.progress)
        metrics: dict[str, float] = {}
        try:
            while self.global_step < cfg.run.total_steps:
                t0 = time.perf_counter()
                self.global_step += collector.collect()
                t1 = time.perf_counter()
                progress = self.global_step / cfg.run.total_steps
                metrics = self.algo.update(self.storage, progress, self.generator)
                # After the update, so the rollout's log-probs and the update used the same statistics.
                self.policy.update_normalizers(self.storage.obs, self.storage.critic_obs)
                t2 = time.perf_counter()
                self.iteration += 1
                metrics.update(collector.stats.drain())
                metrics.update(
                    iteration=float(self.iteration),
                    steps_per_second=self.cfg.batch_size / (t2 - t0),
                    collect_seconds=t1 - t0,
                    update_seconds=t2 - t1,
                )
                if self.curriculum is not None:
                    self.curriculum.advance(self.env, self.cfg.batch_size, metrics["success_rate"])
                if cfg.env.air_goal_ramp_steps:
                    starts = episode_starts(cfg.env, self.global_step)
                    self.env.unwrapped.set_starts(starts)
                    metrics["air_goal_fraction"] = float(starts.air_goal)
                if ranges is not None:
                    metrics.update(ranges.metrics())
                logger.log(self.global_step, metrics)
                logger.histograms(self.global_step, collector.stats.drain_randomization())
                show_progress(bar, self.cfg.batch_size, metrics)
                if cfg.run.checkpoint_every and self.iteration % cfg.run.checkpoint_every == 0:
                    self.save()
        except KeyboardInterrupt:
            raise self.interrupted() from None
        finally:
            bar.close()
            logger.close()
            self.env.close()
        self.save(final=True)
        return metrics

    def interrupted(self) -> KeyboardInterrupt:
        """Save a checkpoint and say how to continue."""
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
