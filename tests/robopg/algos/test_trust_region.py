"""TRPO's pieces against explicit linear algebra, and PPO-KL's dual update of beta."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from robopg.algos.ppo_kl import PPOKL, dual_update_beta, kl_penalty_loss
from robopg.algos.trpo import TRPO, conjugate_gradient, fisher_vector_product, mean_kl, surrogate
from robopg.config import PolicyConfig, PPOKLConfig, TRPOConfig
from robopg.distributions import gaussian_kl
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage


def test_conjugate_gradient_solves_a_random_spd_system():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(20, 20, generator=gen, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(20, dtype=torch.float64)
    b = torch.randn(20, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=60)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)
    # A few iterations already point the right way (what TRPO relies on with cg_iters=10).
    x10 = conjugate_gradient(lambda v: a @ v, b, iters=10)
    assert torch.linalg.norm(a @ x10 - b) < torch.linalg.norm(b)


def tiny_policy(seed: int = 0, dtype: torch.dtype = torch.float64) -> GaussianActorCritic:
    """float64 where results are compared with explicit linear algebra."""
    torch.manual_seed(seed)
    policy = GaussianActorCritic(3, 2, np.array([-1.0, -1.0]), np.array([1.0, 1.0]),
                                 PolicyConfig(hidden_sizes=(4,), init_log_std=-0.3))
    policy.normalizer.update(torch.randn(64, 3) * 2.0 + 1.0)
    return policy.to(dtype)


def rollout(policy: GaussianActorCritic, steps: int = 32, envs: int = 4, seed: int = 0) -> RolloutStorage:
    """A rollout of on-policy actions with advantages correlated with the first action dimension."""
    gen = torch.Generator().manual_seed(seed)
    storage = RolloutStorage(steps, envs, policy.obs_dim, policy.act_dim)
    storage.log_std.copy_(policy.log_std.detach())
    for _ in range(steps):
        obs = torch.randn(envs, policy.obs_dim, generator=gen).to(policy.log_std.dtype)
        actions, log_probs, values, means = policy.act(obs)
        rewards = actions[:, 0] - 0.5 * actions[:, 1] ** 2
        storage.add(obs, actions, log_probs, values, means, rewards.float(),
                    torch.zeros(envs, dtype=torch.bool), torch.zeros(envs, dtype=torch.bool))
    storage.finish(policy.value(torch.randn(envs, policy.obs_dim, generator=gen).to(policy.log_std.dtype)).detach())
    storage.compute_gae(0.9, 0.9)
    return storage


def test_fisher_vector_product_equals_the_explicit_hessian_of_the_mean_kl():
    policy = tiny_policy()
    batch = rollout(policy).full_batch()
    params = policy.actor_parameters()
    names = [n for n, _ in policy.actor.named_parameters()]
    shapes = [p.shape for p in params]
    theta_old = torch.cat([p.detach().reshape(-1) for p in params])

    def kl_of(flat: torch.Tensor) -> torch.Tensor:
        pieces, offset = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            pieces.append(flat[offset:offset + size].reshape(shape))
            offset += size
        means = functional_call(policy.actor, dict(zip(names, pieces[:-1], strict=True)),
                                (policy.normalizer(batch.obs.double()),))
        return gaussian_kl(batch.means.double(), batch.log_std.double(), means, pieces[-1]).mean()

    hessian = torch.autograd.functional.hessian(kl_of, theta_old)
    fvp = fisher_vector_product(mean_kl(policy, batch), params, damping=0.0)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(theta_old.shape[0], generator=gen, dtype=torch.float64)
        assert torch.allclose(fvp(v), hessian @ v, rtol=1e-6, atol=1e-9)
    # At theta_old the Hessian of the KL is the Fisher matrix: symmetric positive semi-definite.
    assert torch.allclose(hessian, hessian.T, atol=1e-10)
    assert torch.linalg.eigvalsh(hessian).min() > -1e-9
    damped = fisher_vector_product(mean_kl(policy, batch), params, damping=0.1)
    assert torch.allclose(damped(v), hessian @ v + 0.1 * v, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("max_kl", [0.001, 0.01, 0.05])
def test_trpo_step_stays_in_the_trust_region_and_improves_the_surrogate(max_kl):
    policy = tiny_policy(seed=2)
    storage = rollout(policy, seed=3)
    batch = storage.full_batch()
    adv = (batch.advantages - batch.advantages.mean()) / batch.advantages.std()
    trpo = TRPO(policy, TRPOConfig(max_kl=max_kl))
    with torch.no_grad():
        before = surrogate(policy, batch, adv).item()
    old = [p.detach().clone() for p in policy.actor_parameters()]
    metrics = trpo.natural_gradient_step(batch, adv)
    with torch.no_grad():
        after = surrogate(policy, batch, adv).item()
        kl = mean_kl(policy, batch).item()
    assert metrics["line_search_failed"] == 0.0
    assert kl <= max_kl and kl == pytest.approx(metrics["kl"])
    assert after > before and after - before == pytest.approx(metrics["surrogate_gain"])
    assert kl > 0.1 * max_kl, "the step should use a good part of the trust region, not crawl"
    assert any(not torch.equal(a, p) for a, p in zip(old, policy.actor_parameters(), strict=True))


def test_trpo_keeps_the_old_policy_when_no_step_improves():
    policy = tiny_policy(seed=4)
    batch = rollout(policy, seed=5).full_batch()
    trpo = TRPO(policy, TRPOConfig(line_search_steps=1))
    old = [p.detach().clone() for p in policy.actor_parameters()]
    # Advantages of exactly zero: the surrogate cannot improve, so every step must be rejected.
    metrics = trpo.natural_gradient_step(batch, torch.zeros_like(batch.advantages))
    assert metrics["line_search_failed"] == 1.0
    assert all(torch.equal(a, p) for a, p in zip(old, policy.actor_parameters(), strict=True))


def test_trpo_refuses_a_shared_trunk():
    policy = GaussianActorCritic(3, 1, np.array([-1.0]), np.array([1.0]), PolicyConfig(shared_trunk=True))
    with pytest.raises(ValueError, match="shared-trunk"):
        TRPO(policy, TRPOConfig())


@pytest.mark.parametrize(("kl", "expected"), [(0.05, 2.0), (0.0151, 2.0), (0.015, 1.0), (0.01, 1.0),
                                              (0.0067, 1.0), (0.0066, 0.5), (0.0, 0.5)])
def test_beta_dual_update_direction(kl, expected):
    assert dual_update_beta(1.0, kl, kl_target=0.01, factor=2.0) == expected


def test_kl_penalty_loss_value_and_gradient():
    ratio = torch.tensor([1.2, 0.9], requires_grad=True)
    adv = torch.tensor([1.0, -2.0])
    kl = torch.tensor([0.1, 0.3], requires_grad=True)
    loss = kl_penalty_loss(ratio, adv, kl, beta=0.5)
    assert loss.item() == pytest.approx(-(1.2 - 1.8) / 2 + 0.5 * 0.2)
    loss.backward()
    assert ratio.grad.tolist() == pytest.approx([-0.5, 1.0])  # -A / B
    assert kl.grad.tolist() == pytest.approx([0.25, 0.25])  # beta / B: the penalty pushes KL down


@pytest.mark.parametrize(("lr", "direction"), [(3e-2, 2.0), (1e-6, 0.5)])
def test_ppo_kl_update_moves_beta_with_the_measured_kl(lr, direction):
    policy = tiny_policy(seed=6, dtype=torch.float32)
    storage = rollout(policy, seed=7)
    algo = PPOKL(policy, PPOKLConfig(learning_rate=lr, init_beta=1.0, kl_target=0.01, epochs=4, minibatches=2))
    metrics = algo.update(storage, 0.0, torch.Generator().manual_seed(0))
    moved_far = metrics["kl"] > 0.015
    assert moved_far == (direction == 2.0), metrics
    assert algo.beta == pytest.approx(direction) and metrics["beta"] == 1.0
