"""The one rollout loop: T steps from N environments into the storage, shared by every algorithm.

The synchronous trainer and each asynchronous (A3C) worker run this same collection; algorithms differ only
in what their ``update()`` does with the storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robopg.modules.actor_critic import GaussianActorCritic
from robopg.storage import RolloutStorage


@dataclass
class EpisodeStats:
    """Per-environment running return/length; finished episodes collected until the next ``drain``."""

    returns: np.ndarray
    lengths: np.ndarray
    finished_returns: list[float] = field(default_factory=list)
    finished_lengths: list[int] = field(default_factory=list)
    finished_successes: list[float] = field(default_factory=list)

    @classmethod
    def create(cls, num_envs: int) -> EpisodeStats:
        return cls(np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64))

    def drain(self) -> dict[str, float]:
        nan = float("nan")
        out = {
            "episode_return": float(np.mean(self.finished_returns)) if self.finished_returns else nan,
            "episode_length": float(np.mean(self.finished_lengths)) if self.finished_lengths else nan,
            "success_rate": float(np.mean(self.finished_successes)) if self.finished_successes else nan,
            "episodes": float(len(self.finished_returns)),
        }
        self.finished_returns, self.finished_lengths, self.finished_successes = [], [], []
        return out


class Collector:
    """Steps ``env`` (a vector env from ``envs.make_vec``) with ``policy`` into ``storage``.

    Keeps the current observation between rollouts, so episodes run on across rollout boundaries; the
    storage records which environments start a fresh episode at its first step (``first_is_start``).
    """

    def __init__(self, env: Any, policy: GaussianActorCritic, storage: RolloutStorage,
                 success_key: str | None) -> None:
        self.env, self.policy, self.storage = env, policy, storage
        self.success_key = success_key
        self.stats = EpisodeStats.create(storage.num_envs)
        self.obs: np.ndarray | None = None
        self._next_is_start = torch.ones(storage.num_envs, dtype=torch.bool)

    def reset(self, seed: int) -> None:
        self.obs, _ = self.env.reset(seed=seed)
        self._next_is_start = torch.ones(self.storage.num_envs, dtype=torch.bool)

    @torch.no_grad()
    def collect(self) -> int:
        """Fill the storage with T steps and close it with V(next observation); returns the steps taken."""
        if self.obs is None:
            raise RuntimeError("Collector.reset(seed) must be called before collect()")
        storage, policy, stats = self.storage, self.policy, self.stats
        storage.reset()
        storage.log_std.copy_(policy.log_std.detach())
        storage.first_is_start = self._next_is_start.clone()
        obs = self.obs
        for _ in range(storage.num_steps):
            obs_t = torch.from_numpy(obs)
            actions, log_probs, values, means = policy.act(obs_t)
            next_obs, rewards, terminated, truncated, infos = self.env.step(policy.to_env_action(actions).numpy())
            storage.add(obs_t, actions, log_probs, values, means, torch.from_numpy(rewards).float(),
                        torch.from_numpy(terminated), torch.from_numpy(truncated))
            # Time-outs bootstrap from the true final observation, never from the reset one.
            timeouts = np.flatnonzero(truncated & ~terminated)
            if timeouts.size:
                final_obs = torch.from_numpy(np.stack(infos["final_obs"][timeouts]).astype(np.float32))
                storage.set_bootstrap(torch.from_numpy(timeouts), policy.value(final_obs))
            stats.returns += rewards
            stats.lengths += 1
            for i in np.flatnonzero(terminated | truncated):
                stats.finished_returns.append(float(stats.returns[i]))
                stats.finished_lengths.append(int(stats.lengths[i]))
                if self.success_key is not None:
                    stats.finished_successes.append(float(infos["final_info"][self.success_key][i]))
                stats.returns[i] = 0.0
                stats.lengths[i] = 0
            obs = next_obs
        storage.finish(policy.value(torch.from_numpy(obs)))
        self._next_is_start = storage.dones[-1].bool()
        self.obs = obs
        return storage.num_steps * storage.num_envs
