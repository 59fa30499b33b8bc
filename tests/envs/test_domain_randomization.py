import gymnasium as gym
import numpy as np
import pytest
from spec_files import spec_file

import envs
from envs.domain_randomization import DomainRandomization
from envs.layout import FlattenObservation


class RecordActions(gym.Wrapper):
    """Records the actions that reach the simulator."""

    def __init__(self, env):
        super().__init__(env)
        self.executed = []

    def step(self, action):
        self.executed.append(np.array(action, copy=True))
        return self.env.step(action)


def instrumented(task, spec):
    recorder = RecordActions(gym.make(task))
    flat = FlattenObservation(recorder)
    return DomainRandomization(flat, envs.load_spec(spec), flat.layout), recorder


@pytest.mark.parametrize("k", [1, 2, 3])
def test_latency_executes_action_from_k_steps_earlier(tmp_path, k):
    env, recorder = instrumented("FetchPush-v4", spec_file(tmp_path, action_latency=k))
    _, info = env.reset(seed=0)
    assert info["randomization"] == {"action_latency": float(k)}
    rng = np.random.default_rng(0)
    chosen = [rng.uniform(-1, 1, 4).astype(np.float32) for _ in range(10)]
    for action in chosen:
        env.step(action)
    for t in range(k):  # neutral midpoint before the first action arrives
        np.testing.assert_array_equal(recorder.executed[t], np.zeros(4))
    for t in range(k, 10):
        np.testing.assert_array_equal(recorder.executed[t], chosen[t - k])
    # A new episode starts from a neutral queue again.
    recorder.executed.clear()
    env.reset()
    env.step(chosen[0])
    np.testing.assert_array_equal(recorder.executed[0], np.zeros(4))


def test_action_noise_is_clipped_to_bounds(tmp_path):
    env, recorder = instrumented("FetchPush-v4", spec_file(tmp_path, action_noise=0.1))
    env.reset(seed=0)
    for _ in range(200):
        env.step(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
    executed = np.array(recorder.executed)
    assert executed.max() <= 1.0 and executed.min() >= -1.0
    assert abs(executed[:, 1].std() - 0.1) < 0.015
    assert np.all(executed[:, 0] <= 1.0) and executed[:, 0].mean() < 1.0


def test_observation_noise_std_and_goal_untouched(tmp_path):
    std = 0.01
    noisy = envs.make_env("FetchPush-v4", randomization=spec_file(tmp_path, observation_noise=std))
    clean = envs.make_env("FetchPush-v4")
    layout = noisy.get_wrapper_attr("layout")
    goal = layout.slices["desired_goal"]
    rng = np.random.default_rng(1)
    diffs = []
    for episode in range(4):
        a, info = noisy.reset(seed=episode)
        b, _ = clean.reset(seed=episode)
        assert info["randomization"] == {"observation_noise": std}
        for _ in range(50):
            action = rng.uniform(-1, 1, 4).astype(np.float32)
            a, ra, *_ = noisy.step(action)
            b, rb, *_ = clean.step(action)
            assert ra == rb  # reward from the true state
            diffs.append(a - b)
    diffs = np.array(diffs)
    np.testing.assert_array_equal(diffs[:, goal], 0.0)
    other = np.delete(diffs, np.r_[goal], axis=1)
    assert abs(other.std() - std) < 0.05 * std
    assert abs(other.mean()) < 0.05 * std


def test_observation_bias_fixed_per_episode(tmp_path):
    env = envs.make_env("FetchPush-v4", randomization=spec_file(tmp_path, observation_bias=0.05))
    clean = envs.make_env("FetchPush-v4")
    a, _ = env.reset(seed=0)
    b, _ = clean.reset(seed=0)
    bias = a - b
    action = np.zeros(4, dtype=np.float32)
    for _ in range(5):
        a, *_ = env.step(action)
        b, *_ = clean.step(action)
        np.testing.assert_allclose(a - b, bias, atol=1e-6)
    assert np.all(bias[28:] == 0) and np.abs(bias[:28]).max() > 0.01
    a, _ = env.reset()  # a new episode draws a new bias vector
    layout = env.get_wrapper_attr("layout")
    new_bias = a - layout.flatten(env.unwrapped._get_obs())
    assert np.all(new_bias[28:] == 0) and not np.allclose(new_bias, bias, atol=1e-3)


def test_empty_spec_is_bit_identical_pass_through():
    env = envs.make_env("FetchPush-v4", randomization="none")
    raw = gym.make("FetchPush-v4")
    obs, info = env.reset(seed=7)
    raw_obs, _ = raw.reset(seed=7)
    layout = env.get_wrapper_attr("layout")
    assert info["randomization"] == {}
    rng = np.random.default_rng(0)
    for _ in range(60):
        expected = np.concatenate([raw_obs[name] for name in layout.names]).astype(np.float32)
        np.testing.assert_array_equal(obs, expected)
        action = rng.uniform(-1, 1, 4).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        raw_obs, raw_reward, raw_terminated, raw_truncated, raw_info = raw.step(action)
        assert (reward, terminated, truncated) == (raw_reward, raw_terminated, raw_truncated)
        assert info["is_success"] == raw_info["is_success"]
        if truncated:
            obs, _ = env.reset()
            raw_obs, _ = raw.reset()


def test_reproducible_from_seed_and_constructor_seed():
    def rollout(env, seed):
        obs, info = env.reset(seed=seed)
        values, trace = [info["randomization"]], [obs]
        for _ in range(120):
            obs, _, _, truncated, info = env.step(np.full(4, 0.5, dtype=np.float32))
            trace.append(obs)
            if truncated:
                obs, info = env.reset()
                values.append(info["randomization"])
        return values, np.array(trace)

    env = envs.make_env("FetchPush-v4", randomization="default")
    v1, t1 = rollout(env, 3)
    v2, t2 = rollout(env, 3)
    v3, t3 = rollout(env, 4)
    assert v1 == v2 and len(v1) == 3 and v1[0] != v1[1]
    np.testing.assert_array_equal(t1, t2)
    assert v1 != v3 and not np.array_equal(t1, t3)

    seeded = envs.make_env("FetchPush-v4", seed=3, randomization="default")
    v4, t4 = rollout(seeded, None)
    assert v4 == v1
    np.testing.assert_array_equal(t4, t1)
