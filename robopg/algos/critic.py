"""Fitting the critic V_phi by regression, for the algorithms that fit it apart from the policy step
(TRPO, REINFORCE with a learned baseline): the lecture's "fit V^pi" box, as supervised learning."""

from __future__ import annotations

import torch

from robopg.algos.optimization import optimizer_step
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import shuffled_chunks


def fit_value(
    policy: GaussianActorCritic,
    optimizer: torch.optim.Optimizer,
    critic_obs: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    minibatches: int,
    max_grad_norm: float,
    generator: torch.Generator,
) -> float:
    """Minimise 0.5 E[(V(x) - y)^2] over ``epochs`` shuffled passes; critic_obs: (B, critic_obs_dim) (the
    observations, or an asymmetric critic's privileged inputs), targets: (B,).

    Returns the mean loss over all minibatch steps.
    """
    total, steps = 0.0, 0
    for _ in range(epochs):
        for idx in shuffled_chunks(critic_obs.shape[0], min(minibatches, critic_obs.shape[0]), generator):
            loss = 0.5 * (policy.value(critic_obs[idx]) - targets[idx]).pow(2).mean()
            optimizer_step(optimizer, loss, max_grad_norm)
            total += loss.item()
            steps += 1
    return total / steps
