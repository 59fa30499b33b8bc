"""Gaussian actor-critic: MLP mean, state-independent log-std, separate MLP critic, normaliser inside.

The policy acts in a normalised action space: ``u ~ N(mu(x), sigma)``; the robot receives
``clip(u, -1, 1)`` mapped affinely onto its bounds [low, high]. Log-probabilities are of the unclipped u,
so the policy gradient is that of the Gaussian the lecture writes down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils import skip_init

from robopg.config import DEFAULT_INIT_LOG_STD, Activation, PolicyConfig
from robopg.distributions import gaussian_entropy, gaussian_log_prob
from robopg.modules.normalizer import RunningNormalizer
from robopg.storage import Sequences

_ACTIVATIONS: dict[Activation, type[nn.Module]] = {
    Activation.TANH: nn.Tanh,
    Activation.ELU: nn.ELU,
    Activation.RELU: nn.ReLU,
}


def hidden_layers(in_dim: int, hidden: Sequence[int], activation: Activation,
                  generator: torch.Generator | None = None) -> nn.Sequential:
    """Linear + activation per width in ``hidden``; orthogonal init with gain sqrt(2), zero biases."""
    layers: list[nn.Module] = []
    sizes = [in_dim, *hidden]
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [_linear(a, b, math.sqrt(2.0), generator), _ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def _linear(in_dim: int, out_dim: int, gain: float, generator: torch.Generator | None) -> nn.Linear:
    # nn.Linear's own init draws from torch's global generator; skip it and make its draws from ``generator``
    # instead before the orthogonal init replaces them: the stream of draws stays the one robopg's seeded runs
    # have always made, so a seed reproduces the documented results.
    layer = skip_init(nn.Linear, in_dim, out_dim)
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    nn.init.uniform_(layer.bias, -1 / math.sqrt(in_dim), 1 / math.sqrt(in_dim), generator=generator)
    nn.init.orthogonal_(layer.weight, gain=gain, generator=generator)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, activation: Activation, out_gain: float,
        generator: torch.Generator | None = None) -> nn.Sequential:
    """MLP with orthogonal init: gain sqrt(2) on hidden layers, ``out_gain`` on the output, zero biases."""
    return nn.Sequential(*hidden_layers(in_dim, hidden, activation, generator),
                         _linear(hidden[-1], out_dim, out_gain, generator))


class GaussianActorCritic(nn.Module):
    """pi(u | x) = N(mu_theta(norm(x)), diag(exp(log_std))^2) and V_phi(norm(x)).

    Two networks by default; ``shared_trunk`` puts both heads on one trunk (the lecture's "architecture
    design": shared features, but the actor's and critic's gradients then pull on the same layers).

    Shapes: obs (B, obs_dim) raw; actions (B, act_dim) in the normalised space; values (B,).
    generator: draws the initial weights (None: torch's global generator); sampling takes one per call.
    ``memory`` arguments are for recurrent policies (robopg/modules/recurrent.py): a feed-forward policy has no
    state, and ignores them.
    """

    recurrent = False
    """Class constant: True for RecurrentActorCritic, whose collection, storage and export carry a state."""
    state_dependent_noise = False
    """Class constant: True for SDEActorCritic (robopg/modules/sde.py), whose std depends on the state and whose
    noise the collector redraws at each rollout's start (``resample_noise``); ``log_std`` is then a matrix."""

    def __init__(
        self, obs_dim: int, act_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: PolicyConfig,
        critic_obs_dim: int | None = None, generator: torch.Generator | None = None, critic_actions: int = 0,
    ) -> None:
        super().__init__()
        low = np.asarray(action_low, dtype=np.float32).reshape(act_dim)
        high = np.asarray(action_high, dtype=np.float32).reshape(act_dim)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
            raise ValueError(
                f"action bounds must be finite with low < high, got low={low}, high={high}; "
                "robopg needs a bounded Box action space"
            )
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.normalizer = RunningNormalizer(obs_dim, clip=cfg.obs_clip)
        self.shared_trunk = cfg.shared_trunk
        # Asymmetric actor-critic (Pinto et al. 2018): the critic reads a privileged vector of its own, with its
        # own normaliser; the actor never sees it, and export takes only the actor.
        self.asymmetric = critic_obs_dim is not None
        self.critic_obs_dim = obs_dim if critic_obs_dim is None else critic_obs_dim
        self.critic_actions = critic_actions
        """Columns at the end of the actor's input (its action history) that an asymmetric critic's input ends with
        (robopg/collector.py ``critic_inputs``); 0: none."""
        if critic_actions and not (self.asymmetric and critic_actions <= min(obs_dim, self.critic_obs_dim)):
            raise ValueError(f"critic_actions = {critic_actions} needs an asymmetric critic and an actor input of at "
                             f"least that many columns (actor {obs_dim}, critic {self.critic_obs_dim})")
        if self.asymmetric:
            if cfg.shared_trunk:
                raise ValueError("an asymmetric critic cannot share the actor's trunk; drop --shared-trunk")
            self.critic_normalizer = RunningNormalizer(self.critic_obs_dim, clip=cfg.obs_clip)
        self._build_networks(cfg, generator)
        init_log_std = DEFAULT_INIT_LOG_STD if cfg.init_log_std is None else cfg.init_log_std
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))
        self.register_buffer("action_low", torch.from_numpy(low))
        self.register_buffer("action_high", torch.from_numpy(high))

    def _build_networks(self, cfg: PolicyConfig, generator: torch.Generator | None) -> None:
        """``self.actor`` (normalised obs -> mean) and ``self.critic`` (normalised critic input -> value)."""
        if cfg.shared_trunk:
            # One trunk module in both Sequentials: its parameters are shared (and counted once by parameters()).
            trunk = hidden_layers(self.obs_dim, cfg.hidden_sizes, cfg.activation, generator)
            self.actor = nn.Sequential(trunk, _linear(cfg.hidden_sizes[-1], self.act_dim, 0.01, generator))
            self.critic = nn.Sequential(trunk, _linear(cfg.hidden_sizes[-1], 1, 1.0, generator))
        else:
            self.actor = mlp(self.obs_dim, cfg.hidden_sizes, self.act_dim, cfg.activation, 0.01, generator)
            self.critic = mlp(self.critic_obs_dim, cfg.hidden_sizes, 1, cfg.activation, 1.0, generator)

    def actor_parameters(self) -> list[nn.Parameter]:
        """theta of pi_theta: the mean network and the log-std (with a shared trunk, the trunk too)."""
        return [*self.actor.parameters(), self.log_std]

    def critic_parameters(self) -> list[nn.Parameter]:
        """phi of V_phi (with a shared trunk, the trunk too)."""
        return list(self.critic.parameters())

    def mean(self, obs: torch.Tensor, memory: Sequences | None = None) -> torch.Tensor:
        """mu_theta(norm(x)): raw obs (B, obs_dim) -> the Gaussian's mean (B, act_dim), from the actor alone."""
        return self.actor(self.normalizer(obs))

    def forward(self, obs: torch.Tensor, critic_obs: torch.Tensor | None = None,
                memory: Sequences | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw obs (B, obs_dim) -> (action mean (B, act_dim), value (B,)). critic_obs (B, critic_obs_dim): the
        critic's input, required with an asymmetric critic; otherwise the critic reads obs."""
        x = self.normalizer(obs)
        if not self.asymmetric:
            return self.actor(x), self.critic(x).squeeze(-1)
        return self.actor(x), self.value(self._check_critic_obs(critic_obs))

    def value(self, critic_obs: torch.Tensor, memory: Sequences | None = None) -> torch.Tensor:
        """V: (B,) from the critic's input (B, critic_obs_dim): the observation, or the privileged vector of an
        asymmetric critic."""
        if not self.asymmetric:
            return self.critic(self.normalizer(critic_obs)).squeeze(-1)
        return self.critic(self.critic_normalizer(critic_obs)).squeeze(-1)

    def update_normalizers(self, obs: torch.Tensor, critic_obs: torch.Tensor) -> None:
        """Merge a rollout's observations (..., obs_dim) and critic inputs (..., critic_obs_dim)."""
        self.normalizer.update(obs)
        if self.asymmetric:
            self.critic_normalizer.update(critic_obs)

    def _check_critic_obs(self, critic_obs: torch.Tensor | None) -> torch.Tensor:
        if critic_obs is None:
            raise ValueError("this policy has an asymmetric critic: pass critic_obs (the privileged inputs)")
        return critic_obs

    @torch.no_grad()
    def act(self, obs: torch.Tensor, critic_obs: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample u ~ pi(. | x) with ``generator`` (None: torch's global one). Returns (actions, log_probs (B,),
        values (B,), means (B, act_dim))."""
        mean, value = self(obs, critic_obs)
        actions = self._sample(mean, generator)
        return actions, gaussian_log_prob(actions, mean, self.log_std), value, mean

    @torch.no_grad()
    def sample_actions(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """u ~ pi(. | x) from the actor alone (no critic input needed): (B, act_dim) in the normalised space."""
        return self._sample(self.mean(obs), generator)

    def _sample(self, mean: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        # Drawn on the CPU whatever the policy's device: one generator type, the same stream on cpu and cuda.
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        return mean + torch.exp(self.log_std) * noise

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor, critic_obs: torch.Tensor | None = None,
                 memory: Sequences | None = None) -> tuple[torch.Tensor, ...]:
        """For the update: (log_probs (B,), entropy (B,), values (B,), means (B, act_dim)); ``memory``: the
        batch's sequences (``Batch.memory``), which a recurrent policy runs on."""
        mean, value = self(obs, critic_obs, memory)
        entropy = gaussian_entropy(self.log_std).expand(mean.shape[0])
        return gaussian_log_prob(actions, mean, self.log_std), entropy, value, mean

    def to_env_action(self, actions: torch.Tensor) -> torch.Tensor:
        """Normalised actions (B, act_dim) -> robot actions in [low, high]: clip to [-1, 1], map affinely."""
        u = torch.clamp(actions, -1.0, 1.0)
        return self.action_low + (u + 1.0) * 0.5 * (self.action_high - self.action_low)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The deployed policy: raw obs (B, obs_dim) -> mean action in robot bounds (B, act_dim)."""
        return self.to_env_action(self.mean(obs))
