"""Advantage and return estimators: pure functions of (T, N) tensors.

Episode ends come in two kinds that must never be merged (docs/design.md, "Episode ends"):
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


def latency_aligned(advantages: torch.Tensor, latency: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
    """Each action's advantage read where the action takes effect: ``L`` steps later under ``L`` steps of latency.

    Under action latency the env executes at step t the action chosen at t - L, so GAE on the executed time line
    (rewards, and a critic that sees the state but not the commands still queued) gives at step t + L the
    advantage of the action chosen at t. Read at t instead, the action is credited with the effect of the one
    chosen L steps before it, and its own effect reaches it only through the (gamma lambda)^L-weighted tail
    (docs/sim2real.md, sections 4 and 8). An action that never executes (its episode ends, or the rollout ends, within
    the L steps) gets 0, the expected advantage of an action with no effect.

        out[t, i] = advantages[t + L, i]   if t + L < T and no episode ends at steps t .. t + L - 1
                  = 0                      otherwise                                  (L = latency[t, i])

    Args:
        advantages: (T, N) advantages of the executed actions, from ``gae`` on the rollout as collected.
        latency: (T, N) integer steps of latency of the episode running at step t (0: unchanged).
        dones: (T, N) 1 where the episode ended at step t (terminated or truncated).

    Returns:
        (T, N) the advantage of the action chosen at each step.
    """
    steps = advantages.shape[0]
    out = advantages.clone()
    # ends[t] = episodes that ended at steps < t, so ends[t + L] - ends[t] counts the ends in t .. t + L - 1
    ends = torch.cat([torch.zeros_like(dones[:1]), dones.to(advantages.dtype).cumsum(0)], dim=0)
    for lag in latency.unique().tolist():
        if lag == 0:
            continue
        rows = latency == lag
        shifted = torch.zeros_like(advantages)
        if lag < steps:
            ended = (ends[lag:steps] - ends[: steps - lag]) > 0
            shifted[: steps - lag] = torch.where(ended, 0.0, advantages[lag:])
        out[rows] = shifted[rows]
    return out


def discounted_reward_to_go(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """The lecture's reward-to-go, G_t = sum_{t' >= t} gamma^(t' - t) r_t', summed to the end of each episode.

    ``G_t = r_t + gamma * (1 - done_t) * G_{t+1}``, with nothing after the rollout's last step: for an episode
    still running there, G_t misses its tail (see ``finished_episode_mask``). rewards, dones: (T, N) -> (T, N).
    """
    not_done = 1.0 - dones.to(rewards.dtype)
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * not_done[t] * running
        out[t] = running
    return out


def episode_start_flags(dones: torch.Tensor, first_is_start: torch.Tensor) -> torch.Tensor:
    """(T, N) bool: step t is the first step of an episode. first_is_start: (N,) for step 0."""
    starts = torch.zeros_like(dones, dtype=torch.bool)
    starts[0] = first_is_start
    starts[1:] = dones[:-1].bool()
    return starts


def full_trajectory_return(
    rewards: torch.Tensor, dones: torch.Tensor, first_is_start: torch.Tensor, gamma: float
) -> torch.Tensor:
    """r(tau) = sum_t gamma^t r_t of each step's whole episode, the same value for every step of it: (T, N).

    The lecture's first REINFORCE estimator weights every grad log pi(u_t | x_t) of a trajectory by r(tau).
    It equals the reward-to-go at the episode's first step, carried forward. Steps of an episode that began
    before the rollout get the return of its in-rollout part only (see ``finished_episode_mask``).
    """
    rtg = discounted_reward_to_go(rewards, dones, gamma)
    starts = episode_start_flags(dones, first_is_start)
    out = torch.empty_like(rtg)
    running = rtg[0]
    for t in range(rewards.shape[0]):
        running = torch.where(starts[t], rtg[t], running)
        out[t] = running
    return out


def finished_episode_mask(
    dones: torch.Tensor, first_is_start: torch.Tensor | None = None
) -> torch.Tensor:
    """(T, N) bool: the steps whose Monte-Carlo return is complete inside the rollout.

    A step qualifies when its episode ends at or after it within the rollout (``dones`` somewhere in
    t..T-1 before the next start). With ``first_is_start`` (N,) given, the episode must also have begun
    inside the rollout, which the full-trajectory return r(tau) needs.
    """
    done = dones.bool()
    ends_later = torch.zeros_like(done)
    running = torch.zeros_like(done[0])
    for t in reversed(range(done.shape[0])):
        running = done[t] | running
        ends_later[t] = running
    if first_is_start is None:
        return ends_later
    starts = episode_start_flags(dones, first_is_start)
    began_inside = torch.zeros_like(done)
    running = first_is_start.bool()
    for t in range(done.shape[0]):
        running = starts[t] | running
        began_inside[t] = running
    return ends_later & began_inside


def td_targets(
    rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """The lecture's TD target for fitting V: y_t = r_t + gamma * V(x_{t+1}), with V = 0 after termination.

    rewards, next_values (V of the true next observation), terminated: (T, N) -> (T, N).
    """
    return rewards + gamma * (1.0 - terminated.to(rewards.dtype)) * next_values


def normalized(advantages: torch.Tensor) -> torch.Tensor:
    """(A - mean) / (std + 1e-8) over the batch: the gradient's scale stops depending on the reward's.
    A single sample has no spread and is returned as is."""
    if advantages.numel() < 2:
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)
