"""Every algorithm trains a recurrent policy: on a real FetchReachDense-v4 rollout its update moves the memory's
weights, and the policy-gradient ones raise the surrogate E[pi / pi_old A] along the rollout's sequences; A3C's
workers update a shared recurrent policy."""

from __future__ import annotations

import multiprocessing

import pytest
import torch

from robopg.algos import ALGORITHMS
from robopg.config import A3CConfig, EnvConfig, PolicyConfig, RunConfig, TrainConfig
from robopg.facts import TaskFacts
from robopg.modules import build_policy
from robopg.runners import Trainer
from robopg.storage import normalized_batch

POLICY = PolicyConfig(hidden_sizes=(16,), recurrent="lstm", rnn_hidden_size=8)


@pytest.mark.parametrize("algo", ["ppo", "ppo-kl", "a2c", "trpo", "reinforce"])
def test_the_update_moves_the_memory_and_raises_the_surrogate(algo, one_rollout):
    cfg = TrainConfig(env=EnvConfig(task="FetchReachDense-v4", num_envs=4, randomization="none"), policy=POLICY,
                      run=RunConfig(algo=algo, seed=1))
    # Rollouts that span an episode end (step 50), and a short update: the test is about the sequences.
    section = cfg.run.algo.section
    cfg = cfg.replace({section: {"rollout_steps": 64, **({"epochs": 2} if algo in ("ppo", "ppo-kl") else {}),
                                 **({"value_epochs": 2} if algo in ("trpo", "reinforce") else {})}})
    facts = TaskFacts.for_run(cfg)
    policy = build_policy(cfg, facts, torch.Generator().manual_seed(1))
    storage = one_rollout(policy, cfg.env, cfg.algorithm.rollout_steps, 4, seed=1, sample_seed=2,
                          success_key=facts.success_key)
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    metrics = ALGORITHMS[cfg.run.algo](policy, cfg.algorithm).update(storage, 0.0, torch.Generator().manual_seed(3))

    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k != "policy_loss")
    moved = {name for name, p in policy.named_parameters() if not torch.equal(p, before[name])}
    assert {"actor.memory.rnn.weight_hh_l0", "actor.memory.rnn.weight_ih_l0"} <= moved
    assert "critic.memory.rnn.weight_hh_l0" in moved  # the recurrent critic is fitted along the sequences too
    if algo != "reinforce":  # REINFORCE weighs by Monte-Carlo returns, not by the storage's advantages
        batch = normalized_batch(storage.full_batch())
        with torch.no_grad():
            log_probs, *_ = policy.evaluate(batch.obs, batch.actions, batch.critic_obs, batch.memory)
        gain = (torch.exp(log_probs - batch.log_probs) * batch.advantages).mean()
        assert gain > 0, f"{algo}: the update lowered the surrogate ({gain:.3g})"


def test_a3c_workers_train_a_shared_recurrent_policy(tmp_path):
    cfg = TrainConfig(
        env=EnvConfig(task="InvertedPendulum-v5", num_envs=4, randomization="none"),
        policy=PolicyConfig(hidden_sizes=(16,), recurrent="gru", rnn_hidden_size=8),
        a3c=A3CConfig(workers=2, rollout_steps=8),
        run=RunConfig(algo="a3c", total_steps=256, seed=0, checkpoint_every=0),
    )
    trainer = Trainer(cfg, tmp_path, progress=False)
    initial = trainer.policy.actor.memory.rnn.weight_hh_l0.detach().clone()
    metrics = trainer.train()
    assert multiprocessing.active_children() == []
    assert metrics["worker_updates_min"] >= 1
    assert not torch.equal(trainer.policy.actor.memory.rnn.weight_hh_l0, initial)
