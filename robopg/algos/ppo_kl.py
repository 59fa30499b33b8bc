"""PPO v1: the surrogate with a KL penalty and a dual update of its weight (Schulman et al. 2017, sec. 4):

    maximise_theta  E_t[ r_t(theta) A_t ] - beta * E_t[ KL(pi_old(. | x_t) || pi_theta(. | x_t)) ]

The lecture writes the Lagrangian of TRPO's constraint, E[r A] + beta (E[KL] - delta) with beta the
multiplier; for a constraint KL <= delta the penalty enters with a minus sign, as here. After each update
beta takes a dual step on the measured KL d: beta *= factor if d > 1.5 d_targ, beta /= factor if
d < d_targ / 1.5. SGD (Adam) over epochs x minibatches, as in PPO-clip (robopg/algos/optimization.py); the KL
is TRPO's mean_kl (robopg/algos/trpo.py), here a penalty instead of a constraint.
"""

from __future__ import annotations

from typing import Any

import torch

from robopg import distributed
from robopg.algos.optimization import (
    make_optimizer,
    minibatch_epochs,
    optimizer_step,
    scheduled_learning_rate,
)
from robopg.algos.ppo import value_loss
from robopg.algos.trpo import mean_kl
from robopg.config import OptimizerKind, PPOKLConfig
from robopg.distributions import gaussian_kl
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import Batch, RolloutStorage


def kl_penalty_loss(ratio: torch.Tensor, advantages: torch.Tensor, kl: torch.Tensor, beta: float) -> torch.Tensor:
    """-(E[r A] - beta E[KL]): the negated PPO-v1 objective; ratio, advantages, kl: (B,)."""
    return -(ratio * advantages).mean() + beta * kl.mean()


def dual_update_beta(beta: float, kl: float, kl_target: float, factor: float = 2.0) -> float:
    """The dual step on beta: more penalty when the policy moved too far, less when it barely moved."""
    if kl > 1.5 * kl_target:
        return beta * factor
    if kl < kl_target / 1.5:
        return beta / factor
    return beta


class PPOKL:
    def __init__(self, policy: GaussianActorCritic, cfg: PPOKLConfig) -> None:
        self.policy = policy
        self.cfg = cfg
        self.beta = cfg.init_beta
        self.optimizer = make_optimizer(OptimizerKind.ADAM, policy.parameters(), cfg.learning_rate)

    def update(self, storage: RolloutStorage, progress: float, generator: torch.Generator) -> dict[str, float]:
        """epochs x minibatches of the penalised surrogate at a fixed beta, then beta's dual step on the KL
        the whole update moved the policy by."""
        cfg, policy = self.cfg, self.policy
        lr = scheduled_learning_rate(self.optimizer, cfg.lr_schedule, cfg.learning_rate, progress)
        storage.compute_gae(cfg.gamma, cfg.gae_lambda)
        metrics, _ = minibatch_epochs(storage, cfg.epochs, cfg.minibatches, generator, cfg.normalize_advantages,
                                      self.minibatch_step)
        with torch.no_grad():  # under torchrun: the ranks' mean, so every rank takes the same beta
            kl_after = distributed.world().average(mean_kl(policy, storage.full_batch())).item()
        beta_used = self.beta
        self.beta = dual_update_beta(self.beta, kl_after, cfg.kl_target, cfg.beta_factor)
        metrics.update(kl=kl_after, beta=beta_used, learning_rate=lr,
                       action_std=torch.exp(policy.log_std).mean().item())
        return metrics

    def minibatch_step(self, batch: Batch) -> dict[str, float]:
        """-(E[r A] - beta E[KL]) + value loss - entropy bonus on one minibatch, and one Adam step on it."""
        cfg, policy = self.cfg, self.policy
        log_probs, entropy, values, means = policy.evaluate(batch.obs, batch.actions, batch.critic_obs, batch.memory)
        kl = gaussian_kl(batch.means, batch.log_std, means, policy.log_std)
        pg_loss = kl_penalty_loss(torch.exp(log_probs - batch.log_probs), batch.advantages, kl, self.beta)
        v_loss = value_loss(values, batch.values, batch.returns, None)
        ent = entropy.mean()
        optimizer_step(self.optimizer, pg_loss + cfg.value_coef * v_loss - cfg.entropy_coef * ent, cfg.max_grad_norm)
        return {"policy_loss": pg_loss.item(), "value_loss": v_loss.item(), "entropy": ent.item()}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "beta": self.beta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.beta = float(state["beta"])
