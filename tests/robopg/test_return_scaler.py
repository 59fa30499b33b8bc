"""``[a2c] normalize_rewards`` (robopg/modules/normalizer.py ReturnScaler) against hand-worked numbers, and its
state through a checkpoint."""

import math

import pytest
import torch

from robopg.algos.a2c import A2C
from robopg.config import A2CConfig, A3CConfig, PolicyConfig
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.modules.normalizer import ReturnScaler


def test_rewards_are_divided_by_the_running_std_of_the_discounted_return():
    scaler = ReturnScaler(gamma=0.5)
    rewards = torch.tensor([[1.0, 3.0], [2.0, 4.0]])
    dones = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # env 1's episode ends at t = 0: its R restarts
    out = scaler(rewards, dones)
    # t = 0: R = (1, 3): mean 2, population variance 1 -> scale 1.
    # t = 1: R = (0.5 * 1 + 2, 0 + 4) = (2.5, 4); over the four R's: mean 2.625, variance 4.6875 / 4 = 1.171875.
    assert out[0].tolist() == pytest.approx([1.0, 3.0], rel=1e-6)
    scale = math.sqrt(1.171875)
    assert out[1].tolist() == pytest.approx([2.0 / scale, 4.0 / scale], rel=1e-6)
    assert scaler.running.tolist() == [2.5, 4.0]
    # Scaled rewards are clipped at +-clip: with clip 1, t = 0 gives (1, 3) -> (1, 1).
    assert ReturnScaler(gamma=0.5, clip=1.0)(rewards, dones)[0].tolist() == pytest.approx([1.0, 1.0])


def test_the_scalers_state_travels_with_the_algorithms_checkpoint():
    def algo() -> A2C:
        policy = GaussianActorCritic(3, 1, [-1.0], [1.0], PolicyConfig(hidden_sizes=(4,)))
        return A2C(policy, A2CConfig(normalize_rewards=True, gamma=0.9))
    first = algo()
    gen = torch.Generator().manual_seed(0)
    first.return_scaler(torch.randn(8, 4, generator=gen) * 5, torch.zeros(8, 4))
    resumed = algo()
    resumed.load_state_dict(first.state_dict())
    nxt = torch.randn(8, 4, generator=gen)
    assert torch.equal(resumed.return_scaler(nxt, torch.zeros(8, 4)), first.return_scaler(nxt, torch.zeros(8, 4)))
    assert A2C(algo().policy, A2CConfig()).return_scaler is None  # off by default


def test_a3c_refuses_normalize_rewards():
    with pytest.raises(ValueError, match="normalize_rewards is built for a2c"):
        A3CConfig(normalize_rewards=True)
