"""Recurrent policies in the rollout: the state carried through collection, and storage whose batches are whole env
sequences.

Collection (``RecurrentActing``, the collector's acting for a recurrent policy): each env's state runs on across
steps and rollouts and is zeroed the moment its episode ends (the env has already reset it: SAME_STEP autoreset),
so it is zeros at every episode's first step. At each rollout's start the storage keeps a copy of every env's
state.

Update (``SequenceStorage``): the rollout is N sequences of T steps. A batch is a set of whole env sequences with
their ``Sequences`` (robopg/storage.py): the state at the rollout's start and the episode starts inside it, where
the policy zeroes its state again (``episode_start_flags``: the masks). The memory runs along each sequence from
the stored state, and the gradient flows back through the rollout and no further (truncated back-propagation
through time: the stored state is data). With the policy's parameters unchanged, the update recomputes exactly the
collection's log-probabilities (tests/robopg/test_recurrent_sequences.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from robopg.advantages import episode_start_flags
from robopg.modules.actor_critic import GaussianActorCritic
from robopg.modules.recurrent import RecurrentActorCritic, State
from robopg.storage import (
    PER_SAMPLE_FIELDS,
    Batch,
    RolloutStorage,
    Sequences,
    normalized_batch,
    shuffled_chunks,
)


class SequenceStorage(RolloutStorage):
    """``RolloutStorage`` of a recurrent policy: also ``initial_state``, every env's state at the rollout's start
    (each (layers, N, hidden), set by the collector), and batches of whole env sequences."""

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, act_dim: int,
                 critic_obs_dim: int | None = None, latency_column: int | None = None) -> None:
        super().__init__(num_steps, num_envs, obs_dim, act_dim, critic_obs_dim, latency_column)
        self.initial_state: State = ()

    def sequences(self) -> Sequences:
        """The rollout's N sequences: episode starts (T, N) (first_is_start, then the step after each done) and
        the state at step 0."""
        return Sequences(episode_start_flags(self.dones, self.first_is_start), self.initial_state)

    def full_batch(self, normalize_advantages: bool = False) -> Batch:
        """All T * N samples, time-major, with their sequences."""
        batch = super().full_batch(normalize_advantages)
        batch.memory = self.sequences()
        return batch

    def minibatches(self, num_minibatches: int, generator: torch.Generator,
                    normalize_advantages: bool = False) -> Iterator[Batch]:
        """Shuffle the N env sequences and yield ``num_minibatches`` batches of whole sequences (T * n samples
        each, time-major), advantages normalised per minibatch when asked."""
        if num_minibatches > self.num_envs:
            raise ValueError(f"{num_minibatches} minibatches requested from {self.num_envs} env sequences; a "
                             f"recurrent policy's minibatch holds whole sequences. Fix: --minibatches {self.num_envs} "
                             "or less")
        sequences = self.sequences()
        for envs in shuffled_chunks(self.num_envs, num_minibatches, generator):
            batch = self.env_batch(envs, sequences)
            yield normalized_batch(batch) if normalize_advantages else batch

    def env_batch(self, envs: torch.Tensor, sequences: Sequences) -> Batch:
        """The sequences of the envs with indices ``envs`` (n,) as one batch of T * n samples, time-major."""
        samples = self.num_steps * envs.numel()
        fields = {name: getattr(self, name)[:, envs].reshape(samples, *getattr(self, name).shape[2:])
                  for name in PER_SAMPLE_FIELDS}
        return Batch(log_std=self.log_std, memory=sequences.select(envs), **fields)


class RecurrentActing:
    """A recurrent policy in the rollout loop (robopg/collector.py's acting): carries every env's state.

    ``act`` steps the policy and keeps the next state; ``value`` is V given the state after the step (time-outs'
    final observations, the rollout's last observation); ``episodes_ended`` zeroes the state of envs the env just
    reset; ``begin`` hands the storage the state at the rollout's start.
    """

    def __init__(self, policy: RecurrentActorCritic, num_envs: int) -> None:
        self.policy, self.num_envs = policy, num_envs
        self.state = policy.initial_state(num_envs)

    def reset(self) -> None:
        """Every env starts an episode: zeros."""
        self.state = self.policy.initial_state(self.num_envs)

    def begin(self, storage: SequenceStorage) -> None:
        storage.initial_state = tuple(s.clone() for s in self.state)

    def act(self, obs: torch.Tensor, critic_obs: torch.Tensor | None,
            generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(actions, log_probs, values, means) of this step, as ``GaussianActorCritic.act`` returns them."""
        actions, log_probs, values, means, self.state = self.policy.act_step(obs, critic_obs, self.state, generator)
        return actions, log_probs, values, means

    def value(self, critic_obs: torch.Tensor, env_ids: np.ndarray | None = None) -> torch.Tensor:
        """V (n,) of critic_obs (n, ...) from the critic's state after this step: of every env, or of ``env_ids``."""
        _, critic_state = self.policy.split_state(self.state)
        if env_ids is not None:
            critic_state = tuple(s[:, torch.from_numpy(env_ids)] for s in critic_state)
        return self.policy.value_step(critic_obs, critic_state)[0]

    def episodes_ended(self, env_ids: np.ndarray) -> None:
        """The env reset these envs: their next step is an episode's first, from zeros."""
        index = torch.from_numpy(env_ids)
        for s in self.state:
            s[:, index] = 0.0


def rollout_storage(policy: GaussianActorCritic, num_steps: int, num_envs: int,
                    latency_column: int | None = None) -> RolloutStorage:
    """The storage ``policy`` trains from: ``SequenceStorage`` for a recurrent policy, else ``RolloutStorage``;
    ``latency_column`` as ``TaskFacts.latency_column`` gives it."""
    storage_cls = SequenceStorage if policy.recurrent else RolloutStorage
    return storage_cls(num_steps, num_envs, policy.obs_dim, policy.act_dim,
                       policy.critic_obs_dim if policy.asymmetric else None, latency_column)
