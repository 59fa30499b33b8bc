"""A tiny real training run on FetchReachDense-v4, shared by the export, evaluate and CLI tests."""

from pathlib import Path

import pytest
import torch

from robopg.collector import Collector
from robopg.config import EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig
from robopg.environment import make_training_env
from robopg.runners import Trainer
from robopg.sequences import rollout_storage
from robopg.storage import RolloutStorage

TINY = TrainConfig(
    env=EnvConfig(task="FetchReachDense-v4", num_envs=4, randomization="default"),
    policy=PolicyConfig(hidden_sizes=(32, 32)),
    ppo=PPOConfig(rollout_steps=16, epochs=2, minibatches=2),
    run=RunConfig(total_steps=256, seed=3, checkpoint_every=2),
)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """One intra-op thread, as every training run sets (run.torch_threads): tests that call an update directly
    would otherwise run torch's default of one thread per core on cores the environments share, which on a loaded
    2-core machine made a recurrent update 50x slower."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")  # a frozen constant: module fixtures may build on it
def tiny_config() -> TrainConfig:
    return TINY


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("tiny_run")
    Trainer(TINY, run_dir, progress=False).train()
    return run_dir


def collect_one_rollout(policy, env_cfg: EnvConfig, steps: int, num_envs: int, seed: int, sample_seed: int,
                        success_key: str | None, latency_column: int | None = None) -> RolloutStorage:
    """One rollout of ``steps`` x ``num_envs`` by ``policy`` on real training envs (reset with ``seed``; actions
    sampled with a generator seeded ``sample_seed``), through the trainer's own Collector."""
    storage = rollout_storage(policy, steps, num_envs, latency_column)
    env = make_training_env(env_cfg, num_envs, seed=seed)
    try:
        collector = Collector(env, policy, storage, success_key, torch.Generator().manual_seed(sample_seed))
        collector.reset(seed=seed)
        collector.collect()
    finally:
        env.close()
    return storage


@pytest.fixture(scope="session")
def one_rollout():
    """``collect_one_rollout`` for tests in any directory under tests/robopg."""
    return collect_one_rollout
