"""Pure math of the policy: Gaussian log-prob/entropy/KL, PPO-clip gradient, value clipping, normaliser."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from robopg.algos.ppo import adaptive_learning_rate, clipped_surrogate_loss, value_loss
from robopg.distributions import gaussian_entropy, gaussian_kl, gaussian_log_prob
from robopg.modules.normalizer import RunningNormalizer


def test_gaussian_formulas_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, other = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    log_std, log_std2 = torch.randn(3, generator=g) * 0.3, torch.randn(3, generator=g) * 0.3
    actions = torch.randn(5, 3, generator=g)
    p, q = Normal(mean, log_std.exp()), Normal(other, log_std2.exp())
    assert torch.allclose(gaussian_log_prob(actions, mean, log_std), p.log_prob(actions).sum(-1), atol=1e-5)
    assert torch.allclose(gaussian_entropy(log_std), p.entropy()[0].sum(), atol=1e-5)
    assert torch.allclose(gaussian_kl(mean, log_std, other, log_std2), kl_divergence(p, q).sum(-1), atol=1e-5)
    assert gaussian_kl(mean, log_std, mean, log_std).abs().max() < 1e-6


@pytest.mark.parametrize(
    "ratio, advantage, zero_grad",
    [
        (1.5, 1.0, True),  # r > 1 + eps with A > 0: clipped, no incentive to grow further
        (0.5, -1.0, True),  # r < 1 - eps with A < 0: clipped
        (0.5, 1.0, False),  # r < 1 - eps with A > 0: the min picks the unclipped term, gradient flows
        (1.5, -1.0, False),  # r > 1 + eps with A < 0: unclipped term is the pessimistic one
        (1.1, 1.0, False),  # inside the trust region
    ],
)
def test_clipped_surrogate_gradient_vanishes_only_where_clipped(ratio, advantage, zero_grad):
    r = torch.tensor([ratio], requires_grad=True)
    clipped_surrogate_loss(r, torch.tensor([advantage]), clip_range=0.2).backward()
    if zero_grad:
        assert r.grad.item() == 0.0
    else:
        assert r.grad.item() == pytest.approx(-advantage)


def test_clipped_surrogate_value():
    ratio = torch.tensor([1.5, 0.5, 1.0])
    adv = torch.tensor([2.0, 2.0, -1.0])
    # min(3.0, 2.4) = 2.4 ; min(1.0, 1.6) = 1.0 ; -1.0  -> mean 2.4/3
    assert clipped_surrogate_loss(ratio, adv, 0.2).item() == pytest.approx(-(2.4 + 1.0 - 1.0) / 3)


def test_value_loss_clipping_is_pessimistic():
    values, old, ret = torch.tensor([3.0]), torch.tensor([1.0]), torch.tensor([2.0])
    assert value_loss(values, old, ret, None).item() == pytest.approx(0.5)
    # clipped value 1.2 -> (1.2 - 2)^2 = .64 > 1 ? no: max(1.0, .64) = 1.0 -> 0.5
    assert value_loss(values, old, ret, 0.2).item() == pytest.approx(0.5)
    values = torch.tensor([1.9])  # unclipped (1.9-2)^2=.01, clipped 1.2 -> .64: max -> .32
    assert value_loss(values, old, ret, 0.2).item() == pytest.approx(0.32)


def test_adaptive_learning_rate_moves_against_kl():
    assert adaptive_learning_rate(1e-3, kl=0.05, desired_kl=0.01) == pytest.approx(1e-3 / 1.5)
    assert adaptive_learning_rate(1e-3, kl=0.001, desired_kl=0.01) == pytest.approx(1.5e-3)
    assert adaptive_learning_rate(1e-3, kl=0.01, desired_kl=0.01) == 1e-3


def test_normalizer_matches_numpy_over_batches_and_round_trips():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 2.0, size=(100, 4)), rng.normal(-1.0, 0.5, size=(37, 4))
    norm = RunningNormalizer(4)
    norm.update(torch.tensor(a, dtype=torch.float32))
    norm.update(torch.tensor(b, dtype=torch.float32))
    both = np.concatenate([a, b])
    assert np.allclose(norm.mean.numpy(), both.mean(0), atol=1e-5)
    assert np.allclose(norm.var.numpy(), both.var(0), atol=1e-4)
    assert norm.count.item() == 137
    x = torch.tensor(both[:3], dtype=torch.float32)
    expected = (both[:3] - both.mean(0)) / np.sqrt(both.var(0) + 1e-8)
    assert np.allclose(norm(x).numpy(), expected, atol=1e-4)
    restored = RunningNormalizer(4)
    restored.load_state_dict(norm.state_dict())
    assert torch.equal(restored(x), norm(x))
    assert norm(torch.full((1, 4), 1e6)).max().item() == 10.0  # clipped
