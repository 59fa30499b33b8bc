"""HistoryStack: hand-checkable stacking on a fake vector env, then the same contract on the real backends."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.history import HistoryStack


class CountingVecEnv(gym.vector.VectorEnv):
    """Two envs with SAME_STEP autoreset; env i's observation at step t of episode e is [100 e + 10 i + t, i].
    Env 0's episodes last 2 steps, env 1's 3. Actions in [-1, 3] (midpoint 1); the actions received are kept."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self) -> None:
        self.num_envs = 2
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 3.0, (1,), dtype=np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 2)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 2)
        self.lengths = np.array([2, 3])
        self.received: list[np.ndarray] = []

    def _obs(self) -> np.ndarray:
        return np.stack([[100 * self.e[i] + 10 * i + self.t[i], i] for i in range(2)]).astype(np.float32)

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[np.ndarray, dict]:
        self.t, self.e = np.zeros(2, dtype=int), np.zeros(2, dtype=int)
        return self._obs(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        self.received.append(np.array(actions))
        self.t += 1
        truncated = self.t == self.lengths
        infos: dict[str, Any] = {"tag": np.array([7, 8])}
        if truncated.any():
            infos["final_obs"] = np.full(2, None, dtype=object)
            for i in np.flatnonzero(truncated):
                infos["final_obs"][i] = self._obs()[i]
            infos["_final_obs"] = truncated.copy()
            self.e[truncated] += 1
            self.t[truncated] = 0
        return self._obs(), np.zeros(2), np.zeros(2, dtype=bool), truncated, infos


def test_reset_fill_shift_order_action_history_and_autoreset_final_obs():
    inner = CountingVecEnv()
    vec = HistoryStack(inner, obs_history=3, action_history=2)
    assert vec.single_observation_space.shape == (3 * 2 + 2 * 1,)
    assert vec.observation_space.shape == (2, 8)

    # Reset: the reset observation three times, the action midpoint (1) twice.
    obs, _ = vec.reset(seed=0)
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, [[0, 0, 0, 0, 0, 0, 1, 1],
                                        [10, 1, 10, 1, 10, 1, 1, 1]])

    # Oldest first, newest last; the action history takes the action clipped to [-1, 3], the env gets it as given.
    obs, _, _, truncated, infos = vec.step(np.array([[5.0], [-0.5]], dtype=np.float32))
    np.testing.assert_array_equal(inner.received[-1], [[5.0], [-0.5]])
    assert not truncated.any() and "final_obs" not in infos
    np.testing.assert_array_equal(obs, [[0, 0, 0, 0, 1, 0, 1, 3],
                                        [10, 1, 10, 1, 11, 1, 1, -0.5]])

    # Env 0 times out: final_obs[0] is the ended episode's stack (history + the true final observation, both
    # actions); the returned obs is the new episode's reset stack. Env 1 runs on.
    obs, _, _, truncated, infos = vec.step(np.array([[2.0], [0.0]], dtype=np.float32))
    np.testing.assert_array_equal(truncated, [True, False])
    np.testing.assert_array_equal(infos["final_obs"][0], [0, 0, 1, 0, 2, 0, 3, 2])
    assert infos["final_obs"][1] is None
    np.testing.assert_array_equal(infos["_final_obs"], [True, False])
    np.testing.assert_array_equal(infos["tag"], [7, 8])  # other infos pass through untouched
    np.testing.assert_array_equal(obs, [[100, 0, 100, 0, 100, 0, 1, 1],
                                        [10, 1, 11, 1, 12, 1, -0.5, 0]])

    # Env 1 times out on its third step; env 0's new episode shifts on from its reset fill.
    obs, _, _, truncated, infos = vec.step(np.array([[-3.0], [1.5]], dtype=np.float32))
    np.testing.assert_array_equal(truncated, [False, True])
    np.testing.assert_array_equal(infos["final_obs"][1], [11, 1, 12, 1, 13, 1, 0, 1.5])
    np.testing.assert_array_equal(obs, [[100, 0, 100, 0, 101, 0, 1, -1],
                                        [110, 1, 110, 1, 110, 1, 1, 1]])


def test_observations_only_and_actions_only():
    obs, _ = HistoryStack(CountingVecEnv(), obs_history=2, action_history=0).reset()
    np.testing.assert_array_equal(obs[1], [10, 1, 10, 1])
    vec = HistoryStack(CountingVecEnv(), obs_history=1, action_history=3)
    vec.reset()
    obs, *_ = vec.step(np.array([[0.5], [2.0]], dtype=np.float32))
    np.testing.assert_array_equal(obs[1], [11, 1, 1, 1, 2.0])


@pytest.mark.parametrize(("k", "m", "match"), [(0, 0, "obs_history must be >= 1"),
                                               (1, -1, "action_history must be >= 0")])
def test_bad_history_lengths_are_named(k, m, match):
    with pytest.raises(ValueError, match=match):
        HistoryStack(CountingVecEnv(), obs_history=k, action_history=m)


@pytest.mark.parametrize("backend", ["sync", "subprocess", "batched"])
def test_real_backends_stack_their_raw_observations(backend):
    """Over a whole episode and its time-out, the stack is exactly what the raw observations and actions give."""
    raw = envs.make_vec("FetchReachDense-v4", num_envs=2, seed=4, randomization="default", backend=backend)
    vec = HistoryStack(envs.make_vec("FetchReachDense-v4", num_envs=2, seed=4, randomization="default",
                                     backend=backend), obs_history=2, action_history=1)
    try:
        raw_obs, _ = raw.reset(seed=4)
        obs, _ = vec.reset(seed=4)
        np.testing.assert_array_equal(obs, np.concatenate([raw_obs, raw_obs, np.zeros((2, 4))], axis=1))
        rng = np.random.default_rng(0)
        for _ in range(50):
            previous = raw_obs
            action = rng.uniform(-1.2, 1.2, (2, 4)).astype(np.float32)  # beyond the bounds: stacked clipped
            raw_obs, *_, raw_infos = raw.step(action)
            obs, _, _, truncated, infos = vec.step(action)
            if not truncated.any():
                expected = np.concatenate([previous, raw_obs, np.clip(action, -1, 1)], axis=1)
                np.testing.assert_array_equal(obs, expected)
        assert truncated.all()
        for i in range(2):
            final = np.concatenate([previous[i], raw_infos["final_obs"][i], np.clip(action[i], -1, 1)])
            np.testing.assert_array_equal(infos["final_obs"][i], final)
        np.testing.assert_array_equal(obs, np.concatenate([raw_obs, raw_obs, np.zeros((2, 4))], axis=1))
    finally:
        raw.close()
        vec.close()


def test_a_partial_reset_starts_over_only_the_masked_envs():
    vec = HistoryStack(envs.make_vec("FetchReachDense-v4", 2, seed=0, backend="sync", randomization="none"), 2, 1)
    try:
        vec.reset(seed=0)
        stepped, *_ = vec.step(np.full((2, 4), 0.5, dtype=np.float32))
        obs, _ = vec.reset(options={"reset_mask": np.array([True, False])})
        np.testing.assert_array_equal(obs[1], stepped[1])
        np.testing.assert_array_equal(obs[0, :16], obs[0, 16:32])
        np.testing.assert_array_equal(obs[0, 32:], np.zeros(4))
    finally:
        vec.close()
