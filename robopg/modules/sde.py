"""State-dependent exploration (gSDE, Raffin et al. 2022): the Gaussian actor-critic whose exploration noise is a
linear function of the actor's last hidden features, drawn once per rollout.

    z(x) = the actor's last hidden layer (its features), treated as a constant (no gradient through it)
    u = mu_theta(x) + z(x) E,   E (features x act_dim), E_ij ~ N(0, sigma_ij^2), one E per env, drawn at each
                                rollout's start and held for its T steps
    sigma_j(x)^2 = sum_i z_i(x)^2 sigma_ij^2 + eps                      (the marginal of u_j given x)
    log pi(u | x) = log N(u; mu_theta(x), diag(sigma(x))^2)

The noise is a smooth function of the state and constant within a rollout, so nearby states get nearby
perturbations: exploration that persists over several steps, where white noise averages out (a pendulum's swing
needs a push held for many steps). The gradient is the lecture's score function of the marginal Gaussian above, as in
Stable-Baselines3's ``use_sde`` (its default: features not learned through the noise, ``full_std``, no expln). log
sigma_ij is the learned parameter ``log_std`` (features x act_dim), started at ``init_log_std``.

The deployed policy is the mean, as for the state-independent Gaussian: export and the runtime do not change.
Algorithms that keep pi_old's std for a KL (ppo, ppo-kl, trpo) refuse ``--sde`` (robopg/config.py).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robopg.config import DEFAULT_INIT_LOG_STD, PolicyConfig
from robopg.distributions import gaussian_entropy, gaussian_log_prob
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import Sequences

SDE_EPS = 1e-6
"""Added to sigma_j(x)^2: a state whose features are all zero still has a proper Gaussian (SB3's epsilon)."""


class SDEActorCritic(GaussianActorCritic):
    """``GaussianActorCritic`` with state-dependent noise; ``resample_noise`` draws the per-env matrices E."""

    state_dependent_noise = True

    def __init__(
        self, obs_dim: int, act_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: PolicyConfig,
        critic_obs_dim: int | None = None, generator: torch.Generator | None = None, critic_actions: int = 0,
    ) -> None:
        super().__init__(obs_dim, act_dim, action_low, action_high, cfg, critic_obs_dim, generator, critic_actions)
        init_log_std = DEFAULT_INIT_LOG_STD if cfg.init_log_std is None else cfg.init_log_std
        self.log_std = nn.Parameter(torch.full((cfg.hidden_sizes[-1], act_dim), float(init_log_std)))
        self._noise: torch.Tensor | None = None  # (N, features, act_dim), the rollout's E per env

    def features(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw obs (B, obs_dim) -> (mean (B, act_dim), features z(x) (B, features), detached)."""
        z = self.actor[:-1](self.normalizer(obs))
        return self.actor[-1](z), z.detach()

    def state_log_std(self, z: torch.Tensor) -> torch.Tensor:
        """log sigma(x) (B, act_dim) of the marginal Gaussian, from the features z (B, features)."""
        variance = z.pow(2) @ torch.exp(2.0 * self.log_std) + SDE_EPS
        return 0.5 * torch.log(variance)

    def resample_noise(self, num_envs: int, generator: torch.Generator | None) -> None:
        """Draw E for each of ``num_envs`` envs; the collector calls this at every rollout's start."""
        shape = (num_envs, *self.log_std.shape)
        unit = torch.randn(shape, generator=generator, dtype=self.log_std.dtype).to(self.log_std.device)
        self._noise = unit * torch.exp(self.log_std.detach())

    def _critic_value(self, obs: torch.Tensor, critic_obs: torch.Tensor | None) -> torch.Tensor:
        return self.value(self._check_critic_obs(critic_obs) if self.asymmetric else obs)

    def _explore(self, mean: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self._noise is not None and self._noise.shape[0] == mean.shape[0]:
            return mean + torch.einsum("bi,bij->bj", z, self._noise)
        # No rollout's matrices for this batch (a caller outside the collector): the same marginal, drawn afresh.
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        return mean + torch.exp(self.state_log_std(z)) * noise

    @torch.no_grad()
    def act(self, obs: torch.Tensor, critic_obs: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, z = self.features(obs)
        actions = self._explore(mean, z, generator)
        log_probs = gaussian_log_prob(actions, mean, self.state_log_std(z))
        return actions, log_probs, self._critic_value(obs, critic_obs), mean

    @torch.no_grad()
    def sample_actions(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, z = self.features(obs)
        return self._explore(mean, z, generator)

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor, critic_obs: torch.Tensor | None = None,
                 memory: Sequences | None = None) -> tuple[torch.Tensor, ...]:
        mean, z = self.features(obs)
        log_std = self.state_log_std(z)
        value = self._critic_value(obs, critic_obs)
        return gaussian_log_prob(actions, mean, log_std), gaussian_entropy(log_std), value, mean
