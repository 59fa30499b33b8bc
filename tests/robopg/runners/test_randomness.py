"""Every random draw of a run goes through its generator: the global torch and numpy generators are neither
seeded nor drawn from, action sampling follows the generator it is given, equal seeds give equal runs."""

import numpy as np
import torch

from robopg.config import EnvConfig, PolicyConfig, PPOConfig, RunConfig, TrainConfig
from robopg.runners import Trainer
from robopg.seeds import generator

CFG = TrainConfig(
    env=EnvConfig(task="InvertedPendulum-v5", num_envs=2, randomization="none"),
    policy=PolicyConfig(hidden_sizes=(16,)),
    ppo=PPOConfig(rollout_steps=32, epochs=2, minibatches=2),
    run=RunConfig(total_steps=128, seed=5, checkpoint_every=0),
)


def test_training_leaves_the_global_generators_alone(tmp_path):
    torch.manual_seed(123)
    np.random.seed(123)
    torch_before, numpy_before = torch.get_rng_state(), np.random.get_state()
    Trainer(CFG, tmp_path, progress=False).train()
    assert torch.equal(torch.get_rng_state(), torch_before)
    after = np.random.get_state()
    assert after[0] == numpy_before[0] and np.array_equal(after[1], numpy_before[1]) and after[2] == numpy_before[2]


def test_equal_seeds_give_equal_runs_whatever_the_global_state(tmp_path):
    runs = []
    for i, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)  # must not matter
        trainer = Trainer(CFG, tmp_path / str(i), progress=False)
        trainer.train()
        runs.append(trainer.policy.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    other = Trainer(CFG.replace({"run": {"seed": 6}}), tmp_path / "other", progress=False)
    assert not torch.equal(other.policy.state_dict()["actor.0.weight"], runs[0]["actor.0.weight"])


def test_action_sampling_follows_the_generator_it_is_given():
    trainer = Trainer(CFG, "unused", progress=False)
    obs = torch.zeros(64, trainer.policy.obs_dim)
    first, *_ = trainer.policy.act(obs, generator=generator(9))
    torch.manual_seed(0)
    again, *_ = trainer.policy.act(obs, generator=generator(9))
    other, *_ = trainer.policy.act(obs, generator=generator(10))
    assert torch.equal(first, again) and not torch.equal(first, other)
    # The spread is the policy's std: exp(init_log_std) = exp(-0.5) around a mean of ~0 (out_gain 0.01).
    assert abs(first.std().item() - np.exp(-0.5)) < 0.1
