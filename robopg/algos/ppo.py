"""PPO v2: the clipped surrogate objective (Schulman et al. 2017), as in the lecture:

    maximise_theta  E_t[ min( r_t(theta) A_t, clip(r_t(theta), 1 - eps, 1 + eps) A_t ) ],
    r_t(theta) = pi_theta(u_t | x_t) / pi_theta_old(u_t | x_t)

plus a value loss for the critic and an optional entropy bonus, optimised by Adam over epochs x minibatches.
"""

from __future__ import annotations

from typing import Any

import torch

from robopg import distributed
from robopg.algos.optimization import linear_decay, make_optimizer, minibatch_epochs, optimizer_step
from robopg.config import LRSchedule, OptimizerKind, PPOConfig
from robopg.distributions import gaussian_kl
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import Batch, RolloutStorage


def clipped_surrogate_loss(ratio: torch.Tensor, advantages: torch.Tensor, clip_range: float) -> torch.Tensor:
    """-E[min(r A, clip(r, 1-eps, 1+eps) A)]: the negated PPO-clip objective; ratio, advantages: (B,)."""
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    return -torch.min(unclipped, clipped).mean()


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_range: float | None
) -> torch.Tensor:
    """0.5 E[(V - R)^2]; with clip_range, the pessimistic max over the unclipped and clipped value update."""
    loss = (values - returns).pow(2)
    if clip_range is not None:
        clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
        loss = torch.max(loss, (clipped - returns).pow(2))
    return 0.5 * loss.mean()


def adaptive_learning_rate(lr: float, kl: float, desired_kl: float) -> float:
    """KL-driven step size (as in rsl_rl): shrink when the policy moved too far, grow when it barely moved."""
    if kl > 2.0 * desired_kl:
        return max(lr / 1.5, 1e-5)
    if kl < 0.5 * desired_kl:
        return min(lr * 1.5, 1e-2)
    return lr


class PPO:
    """Owns the optimiser and the update; collection, storage and GAE are shared with other algorithms."""

    def __init__(self, policy: GaussianActorCritic, cfg: PPOConfig) -> None:
        self.policy = policy
        self.cfg = cfg
        self.learning_rate = cfg.learning_rate
        self.optimizer = make_optimizer(OptimizerKind.ADAM, policy.parameters(), cfg.learning_rate)

    def _set_lr(self, lr: float) -> None:
        self.learning_rate = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def update(self, storage: RolloutStorage, progress: float, generator: torch.Generator) -> dict[str, float]:
        """One PPO update on a full rollout; ``progress`` in [0, 1] is the fraction of training done."""
        cfg = self.cfg
        storage.compute_gae(cfg.gamma, cfg.gae_lambda)
        if cfg.lr_schedule is LRSchedule.LINEAR:
            self._set_lr(linear_decay(cfg.learning_rate, progress))
        metrics, stopped = minibatch_epochs(storage, cfg.epochs, cfg.minibatches, generator,
                                            cfg.normalize_advantages, self.minibatch_step, self.epoch_done)
        metrics.update(learning_rate=self.learning_rate, epochs_stopped_early=float(stopped),
                       action_std=torch.exp(self.policy.log_std).mean().item())
        return metrics

    def minibatch_step(self, batch: Batch) -> dict[str, float]:
        """The clipped surrogate + value loss - entropy bonus on one minibatch, and one Adam step on it."""
        cfg = self.cfg
        log_probs, entropy, values, means = self.policy.evaluate(batch.obs, batch.actions, batch.critic_obs, batch.memory)
        ratio = torch.exp(log_probs - batch.log_probs)
        pg_loss = clipped_surrogate_loss(ratio, batch.advantages, cfg.clip_range)
        v_loss = value_loss(values, batch.values, batch.returns, cfg.clip_range if cfg.clip_value else None)
        ent = entropy.mean()
        optimizer_step(self.optimizer, pg_loss + cfg.value_coef * v_loss - cfg.entropy_coef * ent, cfg.max_grad_norm)
        with torch.no_grad():
            kl = gaussian_kl(batch.means, batch.log_std, means, self.policy.log_std).mean().item()
            clip_fraction = ((ratio - 1.0).abs() > cfg.clip_range).float().mean().item()
        return {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(), "entropy": ent.item(),
                "approx_kl": kl, "clip_fraction": clip_fraction}

    def epoch_done(self, epoch: dict[str, float]) -> bool:
        """Once per epoch: KL to pi_old grows through the epochs, so a per-minibatch rule would keep shrinking.
        Under torchrun the KL is the ranks' mean, so every rank takes the same learning rate and stop."""
        cfg = self.cfg
        kl = distributed.world().mean(epoch["approx_kl"])
        if cfg.lr_schedule is LRSchedule.ADAPTIVE:
            self._set_lr(adaptive_learning_rate(self.learning_rate, kl, cfg.desired_kl))
        return cfg.target_kl > 0 and kl > 1.5 * cfg.target_kl

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "learning_rate": self.learning_rate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._set_lr(float(state["learning_rate"]))
