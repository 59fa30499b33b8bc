"""State-dependent exploration (``--sde``, robopg/modules/sde.py): the noise's law against its closed form, its
persistence within a rollout, the refusals, and a run through train -> export -> the controller runtime."""

import math

import numpy as np
import pytest
import torch

from policies_export import Controller
from robopg.config import A2CConfig, Algo, EnvConfig, PolicyConfig, Recurrent, RunConfig, TrainConfig
from robopg.distributions import gaussian_log_prob
from robopg.export import export_policy, load_trained_policy, record_observations
from robopg.modules.sde import SDE_EPS, SDEActorCritic
from robopg.runners import Trainer


def make_policy(init_log_std: float = -1.0) -> SDEActorCritic:
    return SDEActorCritic(3, 2, np.full(2, -1.0), np.full(2, 1.0),
                          PolicyConfig(hidden_sizes=(8, 5), init_log_std=init_log_std),
                          generator=torch.Generator().manual_seed(0))


def hand_std(policy: SDEActorCritic, obs: torch.Tensor) -> np.ndarray:
    """sigma_j(x) = sqrt(sum_i z_i(x)^2 sigma_ij^2 + eps) with loops over i and j, z the last hidden layer's output."""
    z = policy.actor[:-1](policy.normalizer(obs)).detach().numpy().astype(np.float64)
    sigma = np.exp(policy.log_std.detach().numpy().astype(np.float64))
    out = np.zeros((z.shape[0], sigma.shape[1]))
    for b in range(z.shape[0]):
        for j in range(sigma.shape[1]):
            out[b, j] = math.sqrt(sum(z[b, i] ** 2 * sigma[i, j] ** 2 for i in range(z.shape[1])) + SDE_EPS)
    return out


def test_log_std_is_a_features_by_actions_matrix_started_at_init_log_std():
    policy = make_policy(-2.0)
    assert policy.log_std.shape == (5, 2)
    assert torch.all(policy.log_std == -2.0)
    assert policy.log_std is policy.actor_parameters()[-1]


def test_noise_is_held_within_a_rollout_and_redrawn_at_the_next():
    policy = make_policy()
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(4, 3, generator=gen)
    policy.resample_noise(4, gen)
    first, _, _, mean = policy.act(obs, generator=gen)
    again, _, _, _ = policy.act(obs, generator=gen)
    assert torch.equal(first, again)  # the same state in the same rollout: the same perturbation
    # u - mu(x) = z(x) E for each env's own E, by hand.
    z = policy.actor[:-1](policy.normalizer(obs)).detach()
    for n in range(4):
        assert torch.allclose(first[n] - mean[n], z[n] @ policy._noise[n], atol=1e-6)
    # Envs differ (each its own E) and the next rollout draws afresh.
    assert not torch.allclose(first[0] - mean[0], (z[0] @ policy._noise[1]))
    policy.resample_noise(4, gen)
    assert not torch.allclose(policy.act(obs, generator=gen)[0], first)


def test_marginal_std_of_the_actions_is_the_log_probs_std():
    policy = make_policy(-0.5)
    obs = torch.tensor([[0.3, -1.2, 0.7], [2.0, 0.1, -0.4]])
    std = hand_std(policy, obs)
    # Over many envs' matrices the action at a fixed state spreads with sigma(x): 40,000 draws, std within 2%.
    n = 40_000
    gen = torch.Generator().manual_seed(2)
    policy.resample_noise(n, gen)
    for b in range(2):
        actions, log_probs, _, mean = policy.act(obs[b:b + 1].expand(n, 3), generator=gen)
        empirical = (actions - mean).std(0).numpy()
        assert empirical == pytest.approx(std[b], rel=0.02)
        assert (actions - mean).mean(0).abs().max().item() < 4 * std[b].max() / math.sqrt(n)
    # The log-probability the update uses is that of N(mu(x), diag sigma(x)^2), written out.
    actions = torch.tensor([[0.1, -0.2], [0.5, 0.4]])
    log_probs, entropy, _, mean = policy.evaluate(obs, actions)
    mu = mean.detach().numpy()
    expect = [sum(-0.5 * ((actions[b, j].item() - mu[b, j]) / std[b, j]) ** 2 - math.log(std[b, j])
                  - 0.5 * math.log(2 * math.pi) for j in range(2)) for b in range(2)]
    assert log_probs.detach().numpy() == pytest.approx(expect, abs=1e-5)
    expect_entropy = [sum(math.log(std[b, j]) + 0.5 + 0.5 * math.log(2 * math.pi) for j in range(2)) for b in range(2)]
    assert entropy.detach().numpy() == pytest.approx(expect_entropy, abs=1e-5)


def test_the_score_reaches_the_features_only_through_the_mean():
    """z(x) is a constant in sigma(x) (SB3's learn_features=False): the hidden layers' gradient of log pi equals that
    of the same Gaussian with sigma(x) held fixed, while the noise matrix's log std gets a gradient."""
    policy = make_policy()
    obs, actions = torch.randn(6, 3), torch.randn(6, 2)
    hidden = list(policy.actor[:-1].parameters())
    log_probs = policy.evaluate(obs, actions)[0]
    full = torch.autograd.grad(log_probs.sum(), [*hidden, policy.log_std])
    mean, z = policy.features(obs)
    fixed_std = gaussian_log_prob(actions, mean, policy.state_log_std(z).detach())
    mean_only = torch.autograd.grad(fixed_std.sum(), hidden)
    for g_full, g_mean in zip(full[:-1], mean_only, strict=True):
        assert torch.allclose(g_full, g_mean, atol=1e-6)
    assert torch.count_nonzero(full[-1]) > 0


@pytest.mark.parametrize("algo", [Algo.PPO, Algo.PPO_KL, Algo.TRPO])
def test_algorithms_with_a_kl_refuse_sde(algo):
    with pytest.raises(ValueError, match="--sde is built for a2c"):
        TrainConfig(policy=PolicyConfig(sde=True), run=RunConfig(algo=algo))


def test_a_recurrent_policy_refuses_sde():
    with pytest.raises(ValueError, match="drop --sde or --recurrent"):
        PolicyConfig(sde=True, recurrent=Recurrent.GRU)


def test_an_sde_run_trains_checkpoints_exports_and_runs_on_the_controller(tmp_path):
    cfg = TrainConfig(
        env=EnvConfig(task="FetchReachDense-v4", num_envs=4, randomization="default"),
        policy=PolicyConfig(hidden_sizes=(32, 16), sde=True),
        a2c=A2CConfig(rollout_steps=8),
        run=RunConfig(algo=Algo.A2C, total_steps=256, seed=3, checkpoint_every=2),
    )
    run_dir = tmp_path / "sde_run"
    Trainer(cfg, run_dir, progress=False).train()
    policy, _ = load_trained_policy(run_dir)
    assert isinstance(policy, SDEActorCritic)
    assert policy.log_std.shape == (16, 4)
    assert not torch.all(policy.log_std == cfg.init_log_std)  # the updates moved it
    report = export_policy(run_dir, tmp_path / "sde.onnx")
    assert report.parity_max_abs_diff <= 1e-5  # the deployed policy is the mean: the exported graph is unchanged
    obs = record_observations(policy, EnvConfig(task="FetchReachDense-v4", randomization="none"), 32, seed=5)
    with torch.no_grad():
        expected = policy.deterministic_action(torch.from_numpy(obs)).numpy()
    assert np.abs(Controller.load(report.path).act_batch(obs) - expected).max() <= 1e-5
