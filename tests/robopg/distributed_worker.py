"""Run by tests/robopg/test_distributed.py under ``torchrun --standalone --nproc_per_node 2``: every rank writes
what it ended with to OUT/rank{R}.pt, for the test to compare across ranks.

    python -m torch.distributed.run --standalone --nproc_per_node 2 distributed_worker.py OUT

- ``normalizer``: each rank merges two batches of its own (sizes and distributions differ per rank, see
  ``normalizer_batches``) into a RunningNormalizer; every rank's statistics must be those of all ranks' data.
- one short training per algorithm in ALGORITHM_RUNS: every rank's final parameters, optimiser and algorithm
  state, ADR ranges and generator states.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from robopg import distributed
from robopg.config import TrainConfig
from robopg.modules.normalizer import RunningNormalizer
from robopg.runners import Trainer

BASE = {
    "env": {"task": "FetchReachDense-v4", "num_envs": 3, "randomization": "default"},
    "policy": {"hidden_sizes": [16, 16]},
    "run": {"total_steps": 6 * 2 * 3 * 32, "seed": 11, "checkpoint_every": 0},  # 6 iterations of 2 ranks x 3 x 32
}
ALGORITHM_RUNS = {
    "ppo": {"run": {"algo": "ppo"}, "ppo": {"rollout_steps": 32, "epochs": 3, "minibatches": 2}},
    "ppo_adr": {"run": {"algo": "ppo"}, "ppo": {"rollout_steps": 32, "epochs": 1, "minibatches": 2},
                "adr": {"enabled": True, "buffer_size": 1, "boundary_probability": 1.0}},
    "ppo_kl": {"run": {"algo": "ppo-kl"}, "ppo_kl": {"rollout_steps": 32, "epochs": 2, "minibatches": 2}},
    "trpo": {"run": {"algo": "trpo"}, "trpo": {"rollout_steps": 32, "value_epochs": 2}},
    "a2c": {"run": {"algo": "a2c"}, "a2c": {"rollout_steps": 32}},
    "reinforce": {"run": {"algo": "reinforce"}, "reinforce": {"rollout_steps": 96, "value_epochs": 2}},
}


def normalizer_batches(rank: int) -> list[torch.Tensor]:
    """Rank r's two batches of 3-d observations: 50 + 31 r and 7 + 13 r rows around mean r with scale 1 + r."""
    gen = torch.Generator().manual_seed(100 + rank)
    return [(rank + (1.0 + rank) * torch.randn(rows, 3, generator=gen)) for rows in (50 + 31 * rank, 7 + 13 * rank)]


def run_config(name: str) -> TrainConfig:
    sections = {k: dict(v) for k, v in BASE.items()}
    for section, values in ALGORITHM_RUNS[name].items():
        sections.setdefault(section, {}).update(values)
    return TrainConfig.from_dict(sections)


def main(out: Path) -> None:
    results = {}
    for name in ALGORITHM_RUNS:
        trainer = Trainer(run_config(name), out / name, progress=False)
        trainer.train()
        results[name] = {
            "policy": trainer.policy.state_dict(),
            "algo": trainer.algo.state_dict(),
            "adr": trainer.adr.state_dict() if trainer.adr else None,
            "action_generator": trainer.action_generator.get_state(),
            "global_step": trainer.global_step,
        }
    world = distributed.world()  # joined by the first Trainer
    normalizer = RunningNormalizer(3)
    for batch in normalizer_batches(world.rank):
        normalizer.update(batch)
    results["normalizer"] = normalizer.state_dict()
    results["world"] = {"rank": world.rank, "size": world.size}
    torch.save(results, out / f"rank{world.rank}.pt")
    world.shutdown()
    distributed.end_process(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
