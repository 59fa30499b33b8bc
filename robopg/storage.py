"""Rollout storage: preallocated (T, N, ...) tensors filled by the collector, read by every algorithm."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from robopg.advantages import gae, latency_aligned, normalized


@dataclass(frozen=True)
class Sequences:
    """How the B = T * n samples of a batch form n env sequences of T steps (time-major: sample t * n + j is env
    j at step t), for a recurrent policy, which runs its memory along them (robopg/sequences.py builds them)."""

    starts: torch.Tensor  # (T, n) bool: step t begins an episode, so the state is zeroed before it
    initial_state: tuple[torch.Tensor, ...]  # each (layers, n, hidden): the policy's state at step 0

    @property
    def steps(self) -> int:
        return self.starts.shape[0]

    @property
    def envs(self) -> int:
        return self.starts.shape[1]

    def select(self, envs: torch.Tensor) -> Sequences:
        """The sequences of the envs with these indices (n',): starts (T, n'), initial state (layers, n', hidden)."""
        return Sequences(self.starts[:, envs], tuple(s[:, envs] for s in self.initial_state))


@dataclass
class Batch:
    """A flat minibatch of B samples drawn from the rollout (for a recurrent policy: whole env sequences)."""

    obs: torch.Tensor  # (B, obs_dim) raw observations
    critic_obs: torch.Tensor  # (B, critic_obs_dim) the critic's input: obs itself, or privileged inputs
    actions: torch.Tensor  # (B, act_dim) normalised-space actions that were sampled
    log_probs: torch.Tensor  # (B,) log pi_old(u | x)
    means: torch.Tensor  # (B, act_dim) mean of pi_old
    log_std: torch.Tensor  # (act_dim,) log-std of pi_old
    values: torch.Tensor  # (B,) V_old(x)
    advantages: torch.Tensor  # (B,), normalised over the batch where the algorithm asks for it
    returns: torch.Tensor  # (B,) critic targets
    memory: Sequences | None = None  # recurrent policies: the sequences the samples form; None: independent samples


class RolloutStorage:
    """One rollout of T steps from N environments.

    Shapes: obs (T, N, obs_dim); critic_obs (T, N, critic_obs_dim) (the same tensor as obs unless the critic is
    asymmetric); actions, means (T, N, act_dim); log_probs, values, rewards, terminated,
    dones, truncated, bootstrap_values, advantages, returns (T, N); first_is_start, last_values (N,).

    The collector fills everything up to ``last_values``; the algorithm's ``update()`` then fills
    ``advantages`` and ``returns`` with its own estimator (``compute_gae``, or Monte-Carlo returns).
    ``latency_column``: the column of critic_obs that holds each step's action latency (an asymmetric critic's
    privileged ``action_latency``); given, ``compute_gae`` credits each action where it executes
    (``advantages.latency_aligned``, ``PolicyConfig.latency_aligned_advantages``).
    """

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, act_dim: int,
                 critic_obs_dim: int | None = None, latency_column: int | None = None) -> None:
        if latency_column is not None and not (critic_obs_dim and 0 <= latency_column < critic_obs_dim):
            raise ValueError(f"latency_column {latency_column} is not a column of the critic's {critic_obs_dim} "
                             "inputs; it needs an asymmetric critic whose privileged inputs hold action_latency")
        self.num_steps, self.num_envs = num_steps, num_envs
        self.latency_column = latency_column
        t, n = num_steps, num_envs
        self.obs = torch.zeros(t, n, obs_dim)
        self.critic_obs = self.obs if critic_obs_dim is None else torch.zeros(t, n, critic_obs_dim)
        self.actions = torch.zeros(t, n, act_dim)
        self.means = torch.zeros(t, n, act_dim)
        self.log_std = torch.zeros(act_dim)
        self.log_probs = torch.zeros(t, n)
        self.values = torch.zeros(t, n)
        self.rewards = torch.zeros(t, n)
        self.terminated = torch.zeros(t, n)
        self.truncated = torch.zeros(t, n, dtype=torch.bool)
        self.dones = torch.zeros(t, n)
        self.bootstrap_values = torch.zeros(t, n)  # V(final obs) where truncated, else unused
        self.advantages = torch.zeros(t, n)
        self.returns = torch.zeros(t, n)
        self.first_is_start = torch.ones(n, dtype=torch.bool)  # step 0 begins an episode (fresh reset)
        self.last_values = torch.zeros(n)  # V of the observation after the last step
        self.step = 0

    def add(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        means: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        critic_obs: torch.Tensor | None = None,
    ) -> None:
        """Record step ``self.step`` for all N environments (each argument has the step's (N, ...) shape);
        critic_obs only where the critic is asymmetric."""
        t = self.step
        if t >= self.num_steps:
            raise RuntimeError(f"rollout storage is full ({self.num_steps} steps); call reset() after the update")
        self.obs[t] = obs
        if critic_obs is not None:
            self.critic_obs[t] = critic_obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.means[t] = means
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.dones[t] = torch.logical_or(terminated.bool(), truncated).float()
        self.step += 1

    def set_bootstrap(self, env_ids: torch.Tensor, final_values: torch.Tensor) -> None:
        """V(true final observation) for the environments truncated at the step just added."""
        self.bootstrap_values[self.step - 1, env_ids] = final_values

    def finish(self, last_values: torch.Tensor) -> None:
        """Close the rollout: last_values (N,) is V of the observation after the last step."""
        if self.step != self.num_steps:
            raise RuntimeError(f"rollout has {self.step} of {self.num_steps} steps; collect the rest first")
        self.last_values = last_values

    def next_values(self) -> torch.Tensor:
        """(T, N) V of the true next observation x_{t+1}: V(final observation) where a time limit cut the
        episode, the next step's V otherwise (its value is unused where the episode terminated)."""
        following = torch.cat([self.values[1:], self.last_values.unsqueeze(0)], dim=0)
        return torch.where(self.truncated, self.bootstrap_values, following)

    def compute_gae(self, gamma: float, lam: float) -> None:
        """Fill advantages and returns (= advantages + values) with GAE(gamma, lam); with a ``latency_column``,
        the advantages are then moved to the steps that chose the actions (the returns, the critic's targets, stay
        on the executed time line)."""
        self.advantages, self.returns = gae(
            self.rewards, self.values, self.next_values(), self.terminated, self.dones, gamma, lam
        )
        if self.latency_column is not None:
            latency = self.critic_obs[..., self.latency_column].round().long()
            self.advantages = latency_aligned(self.advantages, latency, self.dones)

    def reset(self) -> None:
        self.step = 0

    def minibatches(self, num_minibatches: int, generator: torch.Generator,
                    normalize_advantages: bool = False) -> Iterator[Batch]:
        """Shuffle the T * N samples and yield ``num_minibatches`` flat batches (advantages normalised per
        minibatch when asked)."""
        full = self.full_batch()
        for idx in shuffled_chunks(full.obs.shape[0], num_minibatches, generator):
            batch = Batch(log_std=self.log_std, **{k: getattr(full, k)[idx] for k in PER_SAMPLE_FIELDS})
            yield normalized_batch(batch) if normalize_advantages else batch

    def full_batch(self, normalize_advantages: bool = False) -> Batch:
        """All T * N samples as one flat batch (time-major: sample t * N + n), advantages normalised over it
        when asked."""
        total = self.num_steps * self.num_envs
        batch = Batch(
            obs=self.obs.reshape(total, -1),
            critic_obs=self.critic_obs.reshape(total, -1),
            actions=self.actions.reshape(total, -1),
            log_probs=self.log_probs.reshape(total),
            means=self.means.reshape(total, -1),
            log_std=self.log_std,
            values=self.values.reshape(total),
            advantages=self.advantages.reshape(total),
            returns=self.returns.reshape(total),
        )
        return normalized_batch(batch) if normalize_advantages else batch


def normalized_batch(batch: Batch) -> Batch:
    """The batch with its advantages normalised (advantages.normalized), the algorithms' normalize_advantages."""
    return dataclasses.replace(batch, advantages=normalized(batch.advantages))


PER_SAMPLE_FIELDS = ("obs", "critic_obs", "actions", "log_probs", "means", "values", "advantages", "returns")
"""The Batch fields with one value per sample (the storage holds each as (T, N, ...))."""


def shuffled_chunks(total: int, num_chunks: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A random permutation of range(total) cut into ``num_chunks`` index tensors of near-equal size."""
    if num_chunks > total:
        raise ValueError(f"{num_chunks} minibatches requested from {total} samples; lower the minibatch count")
    return torch.randperm(total, generator=generator).chunk(num_chunks)
