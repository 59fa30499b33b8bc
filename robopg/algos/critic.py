"""Fitting the critic V_phi by regression, for the algorithms that fit it apart from the policy step
(TRPO, REINFORCE with a learned baseline): the lecture's "fit V^pi" box, as supervised learning."""

from __future__ import annotations

import torch

from robopg.algos.optimization import optimizer_step
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import Sequences, shuffled_chunks


def fit_value(
    policy: GaussianActorCritic,
    optimizer: torch.optim.Optimizer,
    critic_obs: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    minibatches: int,
    max_grad_norm: float,
    generator: torch.Generator,
    memory: Sequences | None = None,
    valid: torch.Tensor | None = None,
) -> float:
    """Minimise 0.5 E[(V(x) - y)^2] over ``epochs`` shuffled passes; critic_obs: (B, critic_obs_dim) (the
    observations, or an asymmetric critic's privileged inputs), targets: (B,).

    memory: a recurrent policy's sequences of the B = T * n samples (time-major); the minibatches are then whole
    env sequences (at most n), and ``valid`` (B,) bool, if given, picks the samples whose targets count (the
    critic still runs along every step). Without memory pass only the samples that count.
    Returns the mean loss over all minibatch steps.
    """
    if memory is not None:
        return _fit_on_sequences(policy, optimizer, critic_obs, targets, memory, valid, epochs, minibatches,
                                 max_grad_norm, generator)
    total, steps = 0.0, 0
    for _ in range(epochs):
        for idx in shuffled_chunks(critic_obs.shape[0], min(minibatches, critic_obs.shape[0]), generator):
            loss = 0.5 * (policy.value(critic_obs[idx]) - targets[idx]).pow(2).mean()
            optimizer_step(optimizer, loss, max_grad_norm)
            total += loss.item()
            steps += 1
    return total / steps


def _fit_on_sequences(policy: GaussianActorCritic, optimizer: torch.optim.Optimizer, critic_obs: torch.Tensor,
                      targets: torch.Tensor, memory: Sequences, valid: torch.Tensor | None, epochs: int,
                      minibatches: int, max_grad_norm: float, generator: torch.Generator) -> float:
    """fit_value over minibatches of whole env sequences (robopg/sequences.py)."""
    t, n = memory.steps, memory.envs
    obs, y = critic_obs.reshape(t, n, -1), targets.reshape(t, n)
    counts = torch.ones(t, n, dtype=torch.bool) if valid is None else valid.reshape(t, n)
    total, steps = 0.0, 0
    for _ in range(epochs):
        for envs in shuffled_chunks(n, min(minibatches, n), generator):
            keep = counts[:, envs].reshape(-1)
            if not keep.any():
                continue
            values = policy.value(obs[:, envs].reshape(t * envs.numel(), -1), memory.select(envs))
            loss = 0.5 * (values[keep] - y[:, envs].reshape(-1)[keep]).pow(2).mean()
            optimizer_step(optimizer, loss, max_grad_norm)
            total += loss.item()
            steps += 1
    return total / max(steps, 1)
