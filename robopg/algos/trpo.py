"""TRPO (Schulman et al. 2015), as the lecture states it:

    maximise_theta  E_t[ pi_theta(u_t | x_t) / pi_theta_old(u_t | x_t) A_t ]
    subject to      E_t[ KL(pi_theta_old(. | x_t) || pi_theta(. | x_t)) ] <= delta

Linearising the surrogate (gradient g) and taking the KL to second order (its Hessian at theta_old is the
Fisher matrix F) gives the natural-gradient step  theta_old + sqrt(2 delta / (x^T F x)) x  with x = F^-1 g,
found by conjugate gradient on Fisher-vector products without ever forming F. A backtracking line search
then accepts the first shrunken step that improves the surrogate and keeps the KL within delta, else
keeps theta_old. The critic is fitted separately by regression (robopg/algos/critic.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from robopg import distributed
from robopg.algos.critic import fit_value
from robopg.algos.optimization import make_optimizer
from robopg.config import OptimizerKind, TRPOConfig
from robopg.distributions import gaussian_kl, gaussian_log_prob
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import Batch, RolloutStorage


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iters: int, residual_tol: float = 1e-10
) -> torch.Tensor:
    """Solve A x = b for symmetric positive-definite A given only v -> A v; b: (D,) -> x: (D,).

    Exact in at most D iterations (in exact arithmetic); TRPO uses ~10 for a good-enough natural gradient.
    """
    x = torch.zeros_like(b)
    r = b.clone()  # residual b - A x
    p = b.clone()  # search direction, A-conjugate to the previous ones
    r_dot = r.dot(r)
    for _ in range(iters):
        if r_dot <= residual_tol:
            break
        ap = matvec(p)
        alpha = r_dot / p.dot(ap)
        x += alpha * p
        r -= alpha * ap
        new_r_dot = r.dot(r)
        p = r + (new_r_dot / r_dot) * p
        r_dot = new_r_dot
    return x


def fisher_vector_product(
    mean_kl: torch.Tensor, params: Sequence[nn.Parameter], damping: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> (H + damping I) v with H the Hessian of ``mean_kl`` (a scalar with a graph to ``params``).

    At theta = theta_old, H of KL(pi_old || pi_theta) is the Fisher information matrix; the product is two
    backward passes (Pearlmutter's trick), so F is never formed. Under torchrun H v is the ranks' mean: the
    Fisher matrix of all ranks' data, so conjugate gradient runs the same on every rank.
    """
    grads = torch.autograd.grad(mean_kl, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    world = distributed.world()

    def product(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(flat.dot(v), params, retain_graph=True)
        return world.average(torch.cat([h.reshape(-1) for h in hv])) + damping * v

    return product


def surrogate(policy: GaussianActorCritic, batch: Batch, advantages: torch.Tensor) -> torch.Tensor:
    """L(theta) = E[pi_theta(u | x) / pi_old(u | x) A]: the importance-sampled surrogate (a scalar)."""
    log_probs = gaussian_log_prob(batch.actions, policy.mean(batch.obs, batch.memory), policy.log_std)
    return (torch.exp(log_probs - batch.log_probs) * advantages).mean()


def mean_kl(policy: GaussianActorCritic, batch: Batch) -> torch.Tensor:
    """E_t[KL(pi_old(. | x_t) || pi_theta(. | x_t))] (a scalar)."""
    return gaussian_kl(batch.means, batch.log_std, policy.mean(batch.obs, batch.memory), policy.log_std).mean()


class TRPO:
    def __init__(self, policy: GaussianActorCritic, cfg: TRPOConfig) -> None:
        if policy.shared_trunk:
            raise ValueError("trpo needs separate actor and critic networks; drop --shared-trunk")
        self.policy = policy
        self.cfg = cfg
        self.critic_optimizer = make_optimizer(OptimizerKind.ADAM, policy.critic_parameters(), cfg.learning_rate)

    def update(self, storage: RolloutStorage, progress: float, generator: torch.Generator) -> dict[str, float]:
        cfg, policy = self.cfg, self.policy
        storage.compute_gae(cfg.gamma, cfg.gae_lambda)
        batch = storage.full_batch(cfg.normalize_advantages)
        metrics = self.natural_gradient_step(batch, batch.advantages)
        metrics["value_loss"] = fit_value(
            policy, self.critic_optimizer, batch.critic_obs, batch.returns, cfg.value_epochs, cfg.value_minibatches,
            cfg.max_grad_norm, generator, batch.memory,
        )
        metrics["action_std"] = torch.exp(policy.log_std).mean().item()
        return metrics

    def natural_gradient_step(self, batch: Batch, advantages: torch.Tensor) -> dict[str, float]:
        """The constrained policy step; the policy's actor parameters end at the accepted point. Under torchrun the
        gradient, the Fisher-vector products and the line search's gain and KL are the ranks' means, so every
        rank takes the same step."""
        cfg, policy = self.cfg, self.policy
        world = distributed.world()
        params = policy.actor_parameters()
        old_params = parameters_to_vector(params).detach().clone()
        loss_old = surrogate(policy, batch, advantages)
        g = world.average(torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss_old, params)]))
        if not torch.isfinite(g).all() or g.norm() == 0:
            return {"surrogate_gain": 0.0, "kl": 0.0, "step_fraction": 0.0, "line_search_failed": 1.0}
        fvp = fisher_vector_product(mean_kl(policy, batch), params, cfg.cg_damping)
        direction = conjugate_gradient(fvp, g, cfg.cg_iters)
        # Largest step along the natural gradient with 0.5 s^T F s = delta (the quadratic KL model).
        step_scale = torch.sqrt(2.0 * cfg.max_kl / direction.dot(fvp(direction)).clamp_min(1e-12))
        full_step = step_scale * direction
        expected_gain = g.dot(full_step).item()

        with torch.no_grad():
            fraction = 1.0
            for _ in range(cfg.line_search_steps):
                vector_to_parameters(old_params + fraction * full_step, params)
                gain_kl = torch.stack([surrogate(policy, batch, advantages) - loss_old, mean_kl(policy, batch)])
                gain, kl = world.average(gain_kl).tolist()
                if kl <= cfg.max_kl and gain > 0:
                    return {"surrogate_gain": gain, "kl": kl, "step_fraction": fraction,
                            "expected_gain": expected_gain, "line_search_failed": 0.0}
                fraction *= cfg.backtrack_ratio
            vector_to_parameters(old_params, params)
        return {"surrogate_gain": 0.0, "kl": 0.0, "step_fraction": 0.0, "expected_gain": expected_gain,
                "line_search_failed": 1.0}

    def state_dict(self) -> dict[str, Any]:
        return {"critic_optimizer": self.critic_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
