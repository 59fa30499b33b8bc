"""REINFORCE: the Monte-Carlo policy gradient of the lecture, with its two variance reductions.

    grad J(theta) ~ 1/N sum_i sum_t grad log pi_theta(u_it | x_it) (W_it - b)

where the weight W is either the whole trajectory's return r(tau) (``returns = full``) or, using causality,
the reward-to-go sum_{t' >= t} gamma^(t'-t) r_t' (``returns = reward_to_go``), and the baseline b is
none, the batch's average return, or a learned state value V(x_t). A baseline leaves the expected gradient
unchanged (E[grad log p(tau) b] = 0) and lowers its variance.

Monte-Carlo returns need whole episodes: a step counts only if its episode ends inside the rollout (and,
for r(tau), began inside it). Episode ends of either kind (terminated or time limit) end the sum: REINFORCE
optimises the finite-horizon return and never bootstraps.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from robopg import distributed
from robopg.advantages import (
    discounted_reward_to_go,
    finished_episode_mask,
    full_trajectory_return,
    normalized,
)
from robopg.algos.critic import fit_value
from robopg.algos.optimization import make_optimizer, optimizer_step
from robopg.config import Baseline, OptimizerKind, ReinforceConfig, ReturnType
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage


def policy_gradient_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """-mean(log pi(u_t | x_t) * W_t): its gradient is minus the sample policy gradient; (B,), (B,) -> ()."""
    return -(log_probs * weights.detach()).mean()


class Reinforce:
    def __init__(self, policy: GaussianActorCritic, cfg: ReinforceConfig) -> None:
        self.policy = policy
        self.cfg = cfg
        self.actor_optimizer = make_optimizer(OptimizerKind.ADAM, policy.actor_parameters(), cfg.learning_rate)
        self.critic_optimizer = make_optimizer(OptimizerKind.ADAM, policy.critic_parameters(), cfg.learning_rate)

    def update(self, storage: RolloutStorage, progress: float, generator: torch.Generator) -> dict[str, float]:
        """One gradient step on the episodes that finished inside the rollout, then (baseline = value) the
        critic's regression onto the reward-to-go."""
        cfg = self.cfg
        reward_to_go = discounted_reward_to_go(storage.rewards, storage.dones, cfg.gamma)
        if cfg.returns is ReturnType.FULL:
            weights = full_trajectory_return(storage.rewards, storage.dones, storage.first_is_start, cfg.gamma)
            mask = finished_episode_mask(storage.dones, storage.first_is_start)
        else:
            weights = reward_to_go
            mask = finished_episode_mask(storage.dones)
        used = int(mask.sum())
        metrics: dict[str, float] = {"samples_used": float(used) / mask.numel()}
        # Under torchrun every rank must take the same steps: the fewest samples any rank has decide.
        used_everywhere = distributed.world().minimum(used)
        if used_everywhere == 0:
            warnings.warn(
                f"reinforce: no episode ended inside a rollout of {storage.num_steps} steps, so there is no "
                "Monte-Carlo return to learn from; raise --rollout-steps above the episode length",
                RuntimeWarning, stacklevel=2,
            )
            return {**metrics, "policy_loss": float("nan")}

        weights = weights[mask]
        if cfg.baseline is Baseline.AVERAGE:
            weights = weights - weights.mean()
        elif cfg.baseline is Baseline.VALUE:
            weights = weights - storage.values[mask]
        if cfg.normalize_advantages:
            weights = normalized(weights)

        log_probs, entropy = self.masked_log_probs(storage, mask)
        loss = policy_gradient_loss(log_probs, weights)
        optimizer_step(self.actor_optimizer, loss, cfg.max_grad_norm)
        metrics.update(policy_loss=loss.item(), entropy=entropy.mean().item(),
                       action_std=torch.exp(self.policy.log_std).mean().item())
        if cfg.baseline is Baseline.VALUE:
            metrics["value_loss"] = self.fit_critic(storage, reward_to_go, mask, generator,
                                                    min(cfg.value_minibatches, used_everywhere))
        return metrics

    def masked_log_probs(self, storage: RolloutStorage, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(u_t | x_t) and the entropy of the steps in ``mask`` (T, N), time-major (B,) each. A recurrent
        policy runs along the whole rollout (its memory needs every step) and keeps the masked ones."""
        if not self.policy.recurrent:
            log_probs, entropy, _, _ = self.policy.evaluate(storage.obs[mask], storage.actions[mask],
                                                            storage.critic_obs[mask])
            return log_probs, entropy
        full = storage.full_batch()
        log_probs, entropy, _, _ = self.policy.evaluate(full.obs, full.actions, full.critic_obs, full.memory)
        keep = mask.reshape(-1)
        return log_probs[keep], entropy[keep]

    def fit_critic(self, storage: RolloutStorage, reward_to_go: torch.Tensor, mask: torch.Tensor,
                   generator: torch.Generator, minibatches: int) -> float:
        """The baseline's regression onto the reward-to-go (T, N) of the steps in ``mask``, in ``minibatches``
        (under torchrun the same number on every rank: each takes the same optimiser steps)."""
        cfg = self.cfg
        fit = (cfg.value_epochs, minibatches, cfg.max_grad_norm, generator)
        if not self.policy.recurrent:
            return fit_value(self.policy, self.critic_optimizer, storage.critic_obs[mask], reward_to_go[mask], *fit)
        full = storage.full_batch()
        return fit_value(self.policy, self.critic_optimizer, full.critic_obs, reward_to_go.reshape(-1), *fit,
                         full.memory, mask.reshape(-1))

    def state_dict(self) -> dict[str, Any]:
        return {"actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
