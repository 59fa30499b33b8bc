"""A2C: advantage actor-critic, synchronous over vectorised environments (the lecture's "A2C" slides).

    A(x_t, u_t) ~ r_t + gamma V(x_{t+1}) - V(x_t)                      (advantage = td)
    grad J(theta) ~ 1/N sum_i sum_t grad log pi_theta(u_it | x_it) A_it
    fit V to MC targets G_t or TD targets r_t + gamma V(x_{t+1})     (critic_target = mc | td)

``advantage = nstep`` sums the rewards to the rollout's end and bootstraps there (Mnih et al. 2016);
``gae`` interpolates between the two with lambda. Actor and critic take one joint gradient step per
rollout; with ``--shared-trunk`` they share their hidden layers.
"""

from __future__ import annotations

from typing import Any

import torch

from robopg.advantages import gae, td_targets
from robopg.algos.optimization import make_optimizer, optimizer_step, scheduled_learning_rate
from robopg.config import A2CConfig, AdvantageEstimator, CriticTarget
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.modules.normalizer import ReturnScaler
from robopg.storage import RolloutStorage

_LAMBDA = {AdvantageEstimator.TD: 0.0, AdvantageEstimator.NSTEP: 1.0}


def critic_targets(storage: RolloutStorage, target: CriticTarget, gamma: float) -> torch.Tensor:
    """(T, N) regression targets for V: Monte-Carlo returns (bootstrapped only where the data stops) or TD."""
    next_values = storage.next_values()
    if target is CriticTarget.TD:
        return td_targets(storage.rewards, next_values, storage.terminated, gamma)
    _, returns = gae(storage.rewards, storage.values, next_values, storage.terminated, storage.dones, gamma, 1.0)
    return returns


def actor_critic_loss(
    policy: GaussianActorCritic, storage: RolloutStorage, cfg: A2CConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """-mean(log pi A) + value_coef * 0.5 mean((V - y)^2) - entropy_coef * H over the whole rollout."""
    storage.compute_gae(cfg.gamma, _LAMBDA.get(cfg.advantage, cfg.gae_lambda))
    targets = critic_targets(storage, cfg.critic_target, cfg.gamma).reshape(-1)
    batch = storage.full_batch(cfg.normalize_advantages)
    log_probs, entropy, values, _ = policy.evaluate(batch.obs, batch.actions, batch.critic_obs, batch.memory)
    pg_loss = -(log_probs * batch.advantages).mean()
    v_loss = 0.5 * (values - targets).pow(2).mean()
    ent = entropy.mean()
    loss = pg_loss + cfg.value_coef * v_loss - cfg.entropy_coef * ent
    return loss, {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(), "entropy": ent.item(),
                  "action_std": torch.exp(policy.log_std).mean().item()}


class A2C:
    def __init__(self, policy: GaussianActorCritic, cfg: A2CConfig) -> None:
        self.policy = policy
        self.cfg = cfg
        self.optimizer = make_optimizer(cfg.optimizer, list(policy.parameters()), cfg.learning_rate)
        self.return_scaler = ReturnScaler(cfg.gamma) if cfg.normalize_rewards else None

    def update(self, storage: RolloutStorage, progress: float, generator: torch.Generator) -> dict[str, float]:
        """One gradient step of actor and critic on the rollout."""
        cfg = self.cfg
        lr = scheduled_learning_rate(self.optimizer, cfg.lr_schedule, cfg.learning_rate, progress)
        if self.return_scaler is not None:
            storage.rewards.copy_(self.return_scaler(storage.rewards, storage.dones))
        loss, metrics = actor_critic_loss(self.policy, storage, cfg)
        metrics["grad_norm"] = optimizer_step(self.optimizer, loss, cfg.max_grad_norm)
        metrics["learning_rate"] = lr
        return metrics

    def state_dict(self) -> dict[str, Any]:
        state = {"optimizer": self.optimizer.state_dict()}
        if self.return_scaler is not None:
            state["return_scaler"] = self.return_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self.return_scaler is not None:
            self.return_scaler.load_state_dict(state["return_scaler"])
