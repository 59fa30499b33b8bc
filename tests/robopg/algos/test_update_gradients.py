"""Each gradient-descent update against the lecture's policy gradient, on a problem where that gradient is known.

A Gaussian bandit with one-step episodes: u ~ N(mu, sigma^2), r(u) = -(u - a)^2, and every step terminates, so
every estimator's advantage is r - V(x). The actor's output layer has zero weights and bias mu, and the critic's
zero weights and bias b, so pi = N(mu, sigma^2) and V = b for any input. Then

    J = -((mu - a)^2 + sigma^2),   dJ/dmu = -2 (mu - a),   dJ/dlog_sigma = -2 sigma^2,

and with the constant baseline b, grad log pi (r - b) is an unbiased sample of it. Each algorithm's optimiser is
swapped for plain SGD with step 1, so an update moves the parameters by exactly minus the gradient of its loss:
the actor must move by the sample policy gradient 1/B sum grad log pi(u_i) (r_i - b) (the lecture's estimator,
computed here by hand), whose mean is the analytic gradient, and the critic by value_coef * mean(r - b).
PPO-clip and PPO-KL take their first minibatch step at theta = theta_old, where the ratio is 1 and the KL
penalty's gradient is 0, so the same holds for them.
"""

import numpy as np
import pytest
import torch

from robopg.algos.a2c import A2C
from robopg.algos.ppo import PPO
from robopg.algos.ppo_kl import PPOKL
from robopg.algos.reinforce import Reinforce
from robopg.config import A2CConfig, PolicyConfig, PPOConfig, PPOKLConfig, ReinforceConfig
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage

MU, LOG_SIGMA, A, B = 0.3, -0.4, 0.8, -0.5
SIGMA = float(np.exp(LOG_SIGMA))
SAMPLES = 100_000
NO_CLIP = 1e9  # max_grad_norm: the test compares raw gradients
SGD = dict(learning_rate=1.0, normalize_advantages=False, max_grad_norm=NO_CLIP)  # the section's step size is 1 too


def bandit_policy() -> GaussianActorCritic:
    policy = GaussianActorCritic(1, 1, np.array([-10.0]), np.array([10.0]),
                                 PolicyConfig(hidden_sizes=(4,), init_log_std=LOG_SIGMA))
    with torch.no_grad():
        for head, bias in ((policy.actor[-1], MU), (policy.critic[-1], B)):
            head.weight.zero_()
            head.bias.fill_(bias)
    return policy


def bandit_rollout(policy: GaussianActorCritic, seed: int = 0) -> RolloutStorage:
    """One step in each of SAMPLES environments, each step terminating its episode."""
    storage = RolloutStorage(1, SAMPLES, 1, 1)
    storage.log_std.copy_(policy.log_std.detach())
    obs = torch.zeros(SAMPLES, 1)
    actions, log_probs, values, means = policy.act(obs, generator=torch.Generator().manual_seed(seed))
    rewards = -(actions[:, 0] - A) ** 2
    storage.add(obs, actions, log_probs, values, means, rewards, torch.ones(SAMPLES, dtype=torch.bool),
                torch.zeros(SAMPLES, dtype=torch.bool))
    storage.finish(torch.zeros(SAMPLES))
    return storage


def sample_policy_gradient(storage: RolloutStorage) -> tuple[torch.Tensor, torch.Tensor]:
    """(d/dmu, d/dlog_sigma) of 1/B sum log pi(u_i) (r_i - b) by hand, and the standard error of each."""
    u = storage.actions[0, :, 0].double()
    advantage = storage.rewards[0].double() - B
    z = (u - MU) / SIGMA
    per_sample = torch.stack([z / SIGMA * advantage, (z**2 - 1.0) * advantage], dim=1)
    return per_sample.mean(0), per_sample.std(0) / SAMPLES**0.5


def parameters_of(policy: GaussianActorCritic) -> torch.Tensor:
    """(actor mean bias, log_std, critic bias)."""
    return torch.stack([policy.actor[-1].bias[0], policy.log_std[0], policy.critic[-1].bias[0]]).detach().clone()


def a2c_update(policy, storage, value_coef):
    algo = A2C(policy, A2CConfig(**SGD, lr_schedule="constant", value_coef=value_coef))
    algo.optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
    algo.update(storage, 0.0, torch.Generator().manual_seed(0))


def ppo_update(policy, storage, value_coef):
    algo = PPO(policy, PPOConfig(**SGD, value_coef=value_coef))
    algo.optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
    storage.compute_gae(algo.cfg.gamma, algo.cfg.gae_lambda)
    algo.minibatch_step(storage.full_batch())


def ppo_kl_update(policy, storage, value_coef):
    algo = PPOKL(policy, PPOKLConfig(**SGD, value_coef=value_coef))
    algo.optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
    storage.compute_gae(algo.cfg.gamma, algo.cfg.gae_lambda)
    algo.minibatch_step(storage.full_batch())


def reinforce_update(policy, storage, value_coef):
    """The actor's step only: REINFORCE fits its critic by a separate regression (checked by its own tests)."""
    algo = Reinforce(policy, ReinforceConfig(**SGD))
    algo.actor_optimizer = torch.optim.SGD(policy.actor_parameters(), lr=1.0)
    algo.critic_optimizer = torch.optim.SGD(policy.critic_parameters(), lr=0.0)
    algo.update(storage, 0.0, torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("update", "fits_critic"), [
    (a2c_update, True), (ppo_update, True), (ppo_kl_update, True), (reinforce_update, False),
], ids=["a2c", "ppo", "ppo-kl", "reinforce"])
def test_update_ascends_the_lecture_gradient_on_a_gaussian_bandit(update, fits_critic):
    policy = bandit_policy()
    storage = bandit_rollout(policy)
    estimate, stderr = sample_policy_gradient(storage)
    before = parameters_of(policy)
    value_coef = 0.7
    update(policy, storage, value_coef)
    moved = (parameters_of(policy) - before).double()
    # The step is exactly the lecture's sample estimator (float32 arithmetic over 1e5 samples)...
    assert moved[:2].tolist() == pytest.approx(estimate.tolist(), rel=2e-3, abs=1e-5)
    # ...whose mean is the analytic gradient: the update ascends J, with the right sign and size.
    analytic = torch.tensor([-2.0 * (MU - A), -2.0 * SIGMA**2], dtype=torch.float64)
    assert torch.all((moved[:2] - analytic).abs() < 4 * stderr), (moved, analytic, stderr)
    if fits_critic:
        # value_coef * 0.5 (V - y)^2 with y = r: its gradient descent moves b towards E[r] by value_coef * mean(r - b).
        expected = value_coef * (storage.rewards[0].double().mean() - B)
        assert moved[2].item() == pytest.approx(expected.item(), rel=2e-3)
