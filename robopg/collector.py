"""The one rollout loop: T steps from N environments into the storage, shared by every algorithm.

The synchronous trainer and each asynchronous (A3C) worker run this same collection; algorithms differ only
in what their ``update()`` does with the storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from robopg.modules.actor_critic import GaussianActorCritic
from robopg.sequences import RecurrentActing
from robopg.storage import RolloutStorage


@dataclass
class EpisodeStats:
    """Per-environment running return/length (and per reward term); finished episodes collected until the next
    ``drain``; the randomisation values environments were reset with, until the next ``drain_randomization``."""

    returns: np.ndarray
    lengths: np.ndarray
    finished_returns: list[float] = field(default_factory=list)
    finished_lengths: list[int] = field(default_factory=list)
    finished_successes: list[float] = field(default_factory=list)
    term_returns: dict[str, np.ndarray] = field(default_factory=dict)
    finished_terms: dict[str, list[float]] = field(default_factory=dict)
    randomization: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def create(cls, num_envs: int) -> EpisodeStats:
        return cls(np.zeros(num_envs), np.zeros(num_envs, dtype=np.int64))

    def add_terms(self, terms: dict[str, np.ndarray]) -> None:
        for name, value in terms.items():
            self.term_returns.setdefault(name, np.zeros_like(self.returns))[:] += value

    def end_episode(self, i: int, success: float | None) -> None:
        self.finished_returns.append(float(self.returns[i]))
        self.finished_lengths.append(int(self.lengths[i]))
        if success is not None:
            self.finished_successes.append(success)
        for name, sums in self.term_returns.items():
            self.finished_terms.setdefault(name, []).append(float(sums[i]))
            sums[i] = 0.0
        self.returns[i] = 0.0
        self.lengths[i] = 0

    def add_randomization(self, infos: dict[str, Any]) -> None:
        """Record the values of the environments that reset this step (infos["randomization"], masked)."""
        for name, values in infos.get("randomization", {}).items():
            if name.startswith("_"):
                continue
            mask = infos["randomization"].get(f"_{name}", np.ones(len(values), dtype=bool))
            self.randomization.setdefault(name, []).extend(np.asarray(values, dtype=np.float64)[mask].tolist())

    def drain(self) -> dict[str, float]:
        nan = float("nan")
        out = {
            "episode_return": float(np.mean(self.finished_returns)) if self.finished_returns else nan,
            "episode_length": float(np.mean(self.finished_lengths)) if self.finished_lengths else nan,
            "success_rate": float(np.mean(self.finished_successes)) if self.finished_successes else nan,
            "episodes": float(len(self.finished_returns)),
        }
        for name in self.term_returns:
            finished = self.finished_terms.get(name, [])
            out[f"reward_{name}"] = float(np.mean(finished)) if finished else nan
        self.finished_returns, self.finished_lengths, self.finished_successes = [], [], []
        self.finished_terms = {}
        return out

    def drain_randomization(self) -> dict[str, np.ndarray]:
        """name -> values every environment that reset since the last call was given."""
        out = {name: np.asarray(values) for name, values in self.randomization.items() if values}
        self.randomization = {}
        return out


def privileged_inputs(infos: dict[str, Any]) -> np.ndarray:
    """The asymmetric critic's input (N, obs_dim + P) float32: the noiseless observation and the true values of
    the randomised parameters this episode (the env's ``clean_obs`` and ``privileged_params`` infos)."""
    missing = [k for k in ("clean_obs", "privileged_params") if k not in infos]
    if missing:
        raise ValueError(f"the env reports no {missing} infos; an asymmetric critic needs an env from envs.make_vec")
    return np.concatenate([infos["clean_obs"], infos["privileged_params"]], axis=1).astype(np.float32)


def critic_inputs(infos: dict[str, Any], obs: np.ndarray | None, actions: int) -> np.ndarray:
    """An asymmetric critic's input (N, obs_dim + P + actions): ``privileged_inputs`` and, with ``actions`` > 0,
    the last ``actions`` columns of the actor's input ``obs`` (N, input_dim): its action history, the commands
    still in a latency pipeline (``PolicyConfig.critic_action_history``)."""
    privileged = privileged_inputs(infos)
    if not actions:
        return privileged
    return np.concatenate([privileged, np.asarray(obs, dtype=np.float32)[:, -actions:]], axis=1)


class EpisodeEndListener(Protocol):
    """Told of every finished episode (the runners' hooks, robopg/runners/hooks.py, listen)."""

    def episode_ended(self, env: Any, index: int, success: float | None) -> None: ...


class StatelessActing:
    """A feed-forward policy in the rollout loop: nothing is carried between steps (``RecurrentActing``,
    robopg/sequences.py, is the recurrent policy's counterpart). ``act`` is the policy's own method, so the
    feed-forward loop makes no extra call per step."""

    def __init__(self, policy: GaussianActorCritic) -> None:
        self.act = policy.act
        self._policy = policy

    def reset(self) -> None:
        pass

    def begin(self, storage: RolloutStorage) -> None:
        pass

    def value(self, critic_obs: torch.Tensor, env_ids: np.ndarray | None = None) -> torch.Tensor:
        return self._policy.value(critic_obs)

    def episodes_ended(self, env_ids: np.ndarray) -> None:
        pass


class Collector:
    """Steps ``env`` (a vector env from ``robopg.environment``) with ``policy`` into ``storage``.

    Keeps the current observation between rollouts, so episodes run on across rollout boundaries; the
    storage records which environments start a fresh episode at its first step (``first_is_start``).
    With an asymmetric critic, the critic's privileged inputs come from the env's infos. Actions are sampled
    with ``generator``. Each of ``listeners`` hears of every finished episode, after the env has already reset
    it (SAME_STEP autoreset).
    """

    def __init__(self, env: Any, policy: GaussianActorCritic, storage: RolloutStorage, success_key: str | None,
                 generator: torch.Generator, listeners: Sequence[EpisodeEndListener] = ()) -> None:
        self.env, self.policy, self.storage = env, policy, storage
        self.success_key = success_key
        self.generator = generator
        self.listeners = tuple(listeners)
        self.stats = EpisodeStats.create(storage.num_envs)
        self.obs: np.ndarray | None = None
        self.critic_obs: np.ndarray | None = None
        self._next_is_start = torch.ones(storage.num_envs, dtype=torch.bool)
        self.acting = RecurrentActing(policy, storage.num_envs) if policy.recurrent else StatelessActing(policy)

    def reset(self, seed: int) -> None:
        self.acting.reset()
        self.obs, infos = self.env.reset(seed=seed)
        self.critic_obs = critic_inputs(infos, self.obs, self.policy.critic_actions) if self.policy.asymmetric else None
        self.stats.add_randomization(infos)
        self._next_is_start = torch.ones(self.storage.num_envs, dtype=torch.bool)

    @torch.no_grad()
    def collect(self) -> int:
        """Fill the storage with T steps and close it with V(next observation); returns the steps taken. The
        environments' arrays go to the storage's device (the policy's) and the actions back to the CPU."""
        if self.obs is None:
            raise RuntimeError("Collector.reset(seed) must be called before collect()")
        storage, policy, stats, acting = self.storage, self.policy, self.stats, self.acting
        asymmetric, device = policy.asymmetric, storage.obs.device
        storage.reset()
        if policy.state_dependent_noise:
            policy.resample_noise(storage.num_envs, self.generator)
        else:
            storage.log_std.copy_(policy.log_std.detach())
        storage.first_is_start = self._next_is_start.to(device, copy=True)
        acting.begin(storage)
        obs, critic_obs = self.obs, self.critic_obs
        for _ in range(storage.num_steps):
            obs_t = torch.from_numpy(obs).to(device)
            critic_t = torch.from_numpy(critic_obs).to(device) if asymmetric else None
            actions, log_probs, values, means = acting.act(obs_t, critic_t, self.generator)
            next_obs, rewards, terminated, truncated, infos = self.env.step(policy.to_env_action(actions).cpu().numpy())
            storage.add(obs_t, actions, log_probs, values, means, torch.from_numpy(np.asarray(rewards)).float(),
                        torch.from_numpy(terminated), torch.from_numpy(truncated), critic_t)
            done = np.flatnonzero(terminated | truncated)
            # Time-outs bootstrap from the true final observation, never from the reset one.
            timeouts = np.flatnonzero(truncated & ~terminated)
            if timeouts.size:
                if asymmetric:
                    ended = {k: infos["final_info"][k][timeouts] for k in ("clean_obs", "privileged_params")}
                    final_actor = np.stack(infos["final_obs"][timeouts]) if policy.critic_actions else None
                    final = critic_inputs(ended, final_actor, policy.critic_actions)
                else:
                    final = np.stack(infos["final_obs"][timeouts]).astype(np.float32)
                storage.set_bootstrap(torch.from_numpy(timeouts),
                                      acting.value(torch.from_numpy(final).to(device), timeouts))
            stats.returns += rewards
            stats.lengths += 1
            if "reward_terms" in infos:
                stats.add_terms(infos["reward_terms"])
            if done.size:
                stats.add_randomization(infos)
                acting.episodes_ended(done)
            for i in done:
                success = None
                if self.success_key is not None:
                    success = float(infos["final_info"][self.success_key][i])
                stats.end_episode(i, success)
                for listener in self.listeners:
                    listener.episode_ended(self.env, int(i), success)
            obs = next_obs
            critic_obs = critic_inputs(infos, next_obs, policy.critic_actions) if asymmetric else None
        storage.finish(acting.value(torch.from_numpy(critic_obs if asymmetric else obs).to(device)))
        self._next_is_start = storage.dones[-1].bool()
        self.obs, self.critic_obs = obs, critic_obs
        return storage.num_steps * storage.num_envs
