"""Advantage and return estimators: pure functions of (T, N) tensors.

Episode ends come in two kinds that must never be merged (DESIGN.md, "Episode ends"):
- ``terminated``: the MDP ended (e.g. the object fell); there is no future value, so V(x') = 0.
- ``truncated``: a time limit cut the episode; the true final state still has value, so the estimator
  bootstraps from V(final observation), which the caller passes in ``next_values``.
Both stop the advantage recursion from reaching into the next (reset) episode.
"""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016), with explicit next-state values.

    Implements the lecture's advantage A(x_t, u_t) ~ r_t + gamma V(x_{t+1}) - V(x_t), averaged over
    n-step horizons with weights lambda^n:

        delta_t = r_t + gamma * (1 - terminated_t) * V'_t - V_t
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}

    Args:
        rewards: (T, N) reward received after the action at step t.
        values: (T, N) V(x_t) of the observation the action was taken in.
        next_values: (T, N) V of the true next observation x_{t+1}: the value of the reset observation is
            wrong after an episode end, so for truncated steps the caller puts V(final observation) here.
        terminated: (T, N) 1 where the episode terminated at step t (no bootstrap).
        dones: (T, N) 1 where the episode ended at step t for any reason (terminated or truncated).
        gamma: discount factor.
        lam: GAE lambda; 0 gives the one-step TD advantage, 1 the Monte-Carlo return minus V.

    Returns:
        advantages (T, N) and returns (T, N) = advantages + values (the critic's regression target).
    """
    not_terminated = 1.0 - terminated.to(rewards.dtype)
    not_done = 1.0 - dones.to(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values
