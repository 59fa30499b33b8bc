"""GAE against hand-worked numbers: plain steps, a termination, and a time-out that bootstraps."""

import pytest
import torch

from robopg.advantages import gae, latency_aligned
from robopg.storage import RolloutStorage

GAMMA, LAM = 0.9, 0.5


def test_gae_without_episode_end_matches_hand_computation():
    # deltas: 1 + .9*1.0 - .5 = 1.4 ; 2 + .9*1.5 - 1 = 2.35 ; 3 + .9*2 - 1.5 = 3.3
    # A2 = 3.3 ; A1 = 2.35 + .45*3.3 = 3.835 ; A0 = 1.4 + .45*3.835 = 3.12575
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    next_values = torch.tensor([[1.0], [1.5], [2.0]])
    zeros = torch.zeros(3, 1)
    adv, ret = gae(rewards, values, next_values, zeros, zeros, GAMMA, LAM)
    assert adv.squeeze(1).tolist() == pytest.approx([3.12575, 3.835, 3.3])
    assert ret.squeeze(1).tolist() == pytest.approx([3.62575, 4.835, 4.8])


def test_termination_gives_no_bootstrap_and_stops_the_recursion():
    # terminated at t=1: delta1 = 1 + 0 - 2 = -1 (V of the reset obs, 7.0, must be ignored)
    # delta0 = 1 + .9*2 - 2 = .8 -> A0 = .8 + .45*(-1) = .35 ; A2 = .8
    rewards = torch.ones(3, 1)
    values = torch.full((3, 1), 2.0)
    next_values = torch.tensor([[2.0], [7.0], [2.0]])
    ended = torch.tensor([[0.0], [1.0], [0.0]])
    adv, _ = gae(rewards, values, next_values, ended, ended, GAMMA, LAM)
    assert adv.squeeze(1).tolist() == pytest.approx([0.35, -1.0, 0.8])


def test_timeout_bootstraps_from_the_true_final_value():
    # truncated at t=1 with V(final obs) = 4: delta1 = 1 + .9*4 - 2 = 2.6 ; A0 = .8 + .45*2.6 = 1.97
    rewards = torch.ones(3, 1)
    values = torch.full((3, 1), 2.0)
    next_values = torch.tensor([[2.0], [4.0], [2.0]])
    terminated = torch.zeros(3, 1)
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    adv, _ = gae(rewards, values, next_values, terminated, dones, GAMMA, LAM)
    assert adv.squeeze(1).tolist() == pytest.approx([1.97, 2.6, 0.8])


def test_lambda_one_gives_monte_carlo_return_minus_value():
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.3], [0.2], [0.1]])
    ended = torch.tensor([[0.0], [0.0], [1.0]])
    next_values = torch.tensor([[0.2], [0.1], [0.0]])  # V(x_{t+1}); the last is never used (terminated)
    _, ret = gae(rewards, values, next_values, ended, ended, 0.5, 1.0)
    assert ret.squeeze(1).tolist() == pytest.approx([1 + 0.25 * 2, 0.5 * 2, 2.0])


def test_storage_uses_bootstrap_value_only_where_truncated():
    storage = RolloutStorage(num_steps=3, num_envs=2, obs_dim=1, act_dim=1)
    for t in range(3):
        trunc = torch.tensor([t == 1, False])
        term = torch.tensor([False, t == 1])
        storage.add(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2), torch.full((2,), 2.0), torch.zeros(2, 1),
                    torch.ones(2), term, trunc)
        if t == 1:
            storage.set_bootstrap(torch.tensor([0]), torch.tensor([4.0]))
    storage.finish(torch.full((2,), 2.0))
    storage.compute_gae(GAMMA, LAM)
    assert storage.advantages[:, 0].tolist() == pytest.approx([1.97, 2.6, 0.8])  # time-out
    assert storage.advantages[:, 1].tolist() == pytest.approx([0.35, -1.0, 0.8])  # termination


def test_storage_refuses_an_incomplete_rollout():
    storage = RolloutStorage(num_steps=2, num_envs=1, obs_dim=1, act_dim=1)
    with pytest.raises(RuntimeError, match="1 of 2 steps"):
        storage.add(*([torch.zeros(1, 1)] * 2), torch.zeros(1), torch.zeros(1), torch.zeros(1, 1), torch.zeros(1),
                    torch.zeros(1, dtype=torch.bool), torch.zeros(1, dtype=torch.bool))
        storage.finish(torch.zeros(1))


def test_latency_aligned_reads_each_action_where_it_executes():
    # 8 steps, 3 envs with latency 0, 2 and 3; envs 1 and 2 end an episode at step 4.
    advantages = torch.arange(1.0, 9.0).unsqueeze(1).repeat(1, 3)  # A_t = t + 1 on the executed time line
    latency = torch.tensor([[0, 2, 3]]).repeat(8, 1)
    dones = torch.zeros(8, 3)
    dones[4, 1:] = 1.0
    out = latency_aligned(advantages, latency, dones)
    assert out[:, 0].tolist() == advantages[:, 0].tolist()  # no latency: unchanged
    # latency 2: the action of step t executes at t + 2. Steps 3 and 4 would execute after the episode's end at
    # step 4, steps 6 and 7 after the rollout's end: 0. Step 2 executes at step 4, the episode's last.
    assert out[:, 1].tolist() == [3.0, 4.0, 5.0, 0.0, 0.0, 8.0, 0.0, 0.0]
    # latency 3: steps 0 and 1 execute at 3 and 4; 2-4 after the episode's end; 5-7 after the rollout's end.
    assert out[:, 2].tolist() == [4.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_storage_with_a_latency_column_moves_advantages_and_keeps_the_critic_targets():
    # critic_obs column 1 holds the latency: env 0 has 1 step, env 1 none.
    storage = RolloutStorage(num_steps=3, num_envs=2, obs_dim=1, act_dim=1, critic_obs_dim=2, latency_column=1)
    for _ in range(3):
        storage.add(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2), torch.full((2,), 0.5), torch.zeros(2, 1),
                    torch.tensor([1.0, 1.0]), torch.zeros(2, dtype=torch.bool), torch.zeros(2, dtype=torch.bool),
                    torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    storage.finish(torch.full((2,), 0.5))
    storage.compute_gae(GAMMA, LAM)
    # GAE on the executed line, both envs: deltas 1 + .9*.5 - .5 = .95 each; A2 = .95, A1 = .95 + .45*.95 = 1.3775,
    # A0 = .95 + .45*1.3775 = 1.569875
    plain = [1.569875, 1.3775, 0.95]
    assert storage.advantages[:, 1].tolist() == pytest.approx(plain)
    assert storage.advantages[:, 0].tolist() == pytest.approx([1.3775, 0.95, 0.0])  # read one step later
    assert storage.returns[:, 0].tolist() == pytest.approx([a + 0.5 for a in plain])  # targets unshifted
    with pytest.raises(ValueError, match="not a column of the critic's 2 inputs"):
        RolloutStorage(num_steps=3, num_envs=2, obs_dim=1, act_dim=1, critic_obs_dim=2, latency_column=2)
