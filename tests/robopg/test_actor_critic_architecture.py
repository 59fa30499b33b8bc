"""The lecture's architecture choice (two networks vs a shared trunk) and A2C's critic targets by hand."""

import numpy as np
import pytest
import torch

from robopg.advantages import td_targets
from robopg.algos.a2c import A2C, critic_targets
from robopg.config import A2CConfig, CriticTarget, PolicyConfig
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage


def make_policy(shared: bool) -> GaussianActorCritic:
    torch.manual_seed(0)
    return GaussianActorCritic(3, 2, np.full(2, -1.0), np.full(2, 1.0),
                               PolicyConfig(hidden_sizes=(8, 8), shared_trunk=shared))


def test_shared_trunk_shares_hidden_layers_and_two_networks_do_not():
    two, shared = make_policy(False), make_policy(True)
    assert shared.actor[0] is shared.critic[0]
    assert not set(map(id, two.actor.parameters())) & set(map(id, two.critic.parameters()))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    trunk = 3 * 8 + 8 + 8 * 8 + 8
    assert count(two) - count(shared) == trunk  # one trunk fewer
    # A critic-only loss moves the actor's output through the shared trunk, never with two networks.
    obs = torch.randn(16, 3)
    for policy, moves in ((two, False), (shared, True)):
        before = policy.actor(obs).detach()
        opt = torch.optim.SGD(policy.critic_parameters(), lr=0.1)
        policy.value(obs).pow(2).mean().backward()
        opt.step()
        assert (not torch.allclose(policy.actor(obs), before)) == moves


def test_a2c_critic_targets_by_hand():
    storage = RolloutStorage(num_steps=2, num_envs=1, obs_dim=3, act_dim=2)
    for reward, term in ((1.0, False), (2.0, False)):
        storage.add(torch.zeros(1, 3), torch.zeros(1, 2), torch.zeros(1), torch.tensor([0.5]), torch.zeros(1, 2),
                    torch.tensor([reward]), torch.tensor([term]), torch.tensor([False]))
    storage.finish(torch.tensor([4.0]))
    gamma = 0.5
    # TD: y_t = r_t + gamma V(x_{t+1}): V(x_1) = 0.5 (recorded), V(x_2) = 4 (last value).
    assert critic_targets(storage, CriticTarget.TD, gamma).squeeze(1).tolist() == pytest.approx([1.25, 4.0])
    # MC: discounted rewards to the rollout's end, bootstrapped there: 1 + 0.5 * (2 + 0.5 * 4), 2 + 0.5 * 4.
    assert critic_targets(storage, CriticTarget.MC, gamma).squeeze(1).tolist() == pytest.approx([3.0, 4.0])
    assert td_targets(torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([1.0]), 0.9).item() == 1.0


@pytest.mark.parametrize("shared", [False, True])
def test_a2c_update_takes_one_joint_step(shared):
    policy = make_policy(shared)
    storage = RolloutStorage(num_steps=4, num_envs=2, obs_dim=3, act_dim=2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(4):
            obs = torch.randn(2, 3, generator=gen)
            actions, log_probs, values, means = policy.act(obs)
            storage.add(obs, actions, log_probs, values, means, actions[:, 0], torch.zeros(2, dtype=torch.bool),
                        torch.zeros(2, dtype=torch.bool))
        storage.finish(policy.value(torch.randn(2, 3, generator=gen)))
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    metrics = A2C(policy, A2CConfig()).update(storage, 0.0, gen)
    assert np.isfinite(metrics["policy_loss"]) and metrics["value_loss"] > 0
    changed = {k for k, v in policy.state_dict().items() if not torch.equal(v, before[k])}
    assert "log_std" in changed and any(k.startswith("critic") for k in changed)
