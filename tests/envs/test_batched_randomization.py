"""Randomisation on the batched backend: per-environment models, reproducibility, noise and latency."""

import mujoco
import numpy as np
import pytest
from spec_files import spec_file

import envs
from envs.batched import BatchedFetchVecEnv


def object_masses(vec):
    body = mujoco.mj_name2id(vec.engine.task.model, mujoco.mjtObj.mjOBJ_BODY, "object0")
    return np.array([m.body_mass[body] for m in vec.engine.models]), vec.engine.task.model.body_mass[body]


def run(vec, seed, steps=60):
    obs, info = vec.reset(seed=seed)
    values, trace = [info["randomization"]], [obs]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs, *_, info = vec.step(rng.uniform(-1, 1, (vec.num_envs, 4)).astype(np.float32))
        trace.append(obs)
        if "randomization" in info:
            values.append(info["randomization"])
    return values, np.array(trace)


def test_each_env_has_its_own_model_rewritten_every_episode():
    vec = envs.make_vec("FetchPickAndPlace-v4", 4, seed=3, randomization="default", backend="batched")
    _, info = vec.reset(seed=3)
    masses, nominal = object_masses(vec)
    sampled = info["randomization"]["object_mass"]
    assert len({id(m) for m in vec.engine.models}) == 4
    assert len(set(sampled)) == 4  # differ per env
    np.testing.assert_allclose(masses, nominal * sampled)
    gains = np.array([m.actuator_gainprm[:, 0] for m in vec.engine.models])
    nominal_gain = vec.engine.task.model.actuator_gainprm[0, 0]
    np.testing.assert_allclose(gains[:, 0], nominal_gain * info["randomization"]["gripper_gain"])
    for _ in range(50):  # the time limit: every env starts a new episode with new values
        *_, info = vec.step(np.zeros((4, 4), dtype=np.float32))
    new = info["randomization"]["object_mass"]
    assert info["_randomization"].all() and not np.any(new == sampled)
    np.testing.assert_allclose(object_masses(vec)[0], nominal * new)  # restored from nominal, not compounded
    vec.close()


def test_reproducible_from_seed_and_models_shared_without_dynamics():
    a = envs.make_vec("FetchPush-v4", 3, seed=5, randomization="default", backend="batched")
    b = envs.make_vec("FetchPush-v4", 3, seed=5, randomization="default", backend="batched")
    c = envs.make_vec("FetchPush-v4", 3, seed=6, randomization="default", backend="batched")
    va, ta = run(a, 5)
    vb, tb = run(b, 5)
    vc, tc = run(c, 6)
    np.testing.assert_array_equal(ta, tb)
    for x, y in zip(va, vb, strict=True):
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
    assert not np.array_equal(ta, tc)
    # env i is seeded with seed + i: env 1 of seed 5 is env 0 of seed 6.
    np.testing.assert_array_equal(va[0]["object_mass"][1], vc[0]["object_mass"][0])
    plain = envs.make_vec("FetchPush-v4", 3, seed=5, randomization="none", backend="batched")
    assert len({id(m) for m in plain.engine.models}) == 1  # nothing randomised: one shared model
    for vec in (a, b, c, plain):
        vec.close()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_latency_executes_the_action_from_k_steps_earlier(tmp_path, k):
    """Latency k with actions a0, a1, ... moves the robot exactly as no latency with k zeros, then a0, a1, ..."""
    spec = spec_file(tmp_path, action_latency=k)
    delayed = envs.make_vec("FetchPickAndPlace-v4", 2, 0, spec, backend="batched")
    plain = envs.make_vec("FetchPickAndPlace-v4", 2, 0, "none", backend="batched")
    delayed.reset(seed=0)
    plain.reset(seed=0)
    rng = np.random.default_rng(1)
    chosen = [rng.uniform(-1, 1, (2, 4)).astype(np.float32) for _ in range(12)]
    neutral = np.zeros((2, 4), dtype=np.float32)
    for t in range(12):
        obs_delayed, *_ = delayed.step(chosen[t])
        obs_plain, *_ = plain.step(chosen[t - k] if t >= k else neutral)
        np.testing.assert_array_equal(obs_delayed, obs_plain)


def test_observation_noise_std_bias_and_goal_untouched(tmp_path):
    std, bias = 0.01, 0.05
    noisy = envs.make_vec("FetchPush-v4", 8, 0, spec_file(tmp_path, observation_noise=std), backend="batched")
    biased = BatchedFetchVecEnv("FetchPush-v4", 8, 0, envs.load_spec(spec_file(tmp_path, observation_bias=bias)))
    clean = envs.make_vec("FetchPush-v4", 8, 0, "none", backend="batched")
    goal = noisy.layout.slices["desired_goal"]
    diffs, offsets = [], []
    action = np.zeros((8, 4), dtype=np.float32)
    a, b, c = (v.reset(seed=0)[0] for v in (noisy, biased, clean))
    for _ in range(40):
        diffs.append(a - c)
        offsets.append(b - c)
        a, b, c = (v.step(action)[0] for v in (noisy, biased, clean))
    diffs, offsets = np.array(diffs), np.array(offsets)
    np.testing.assert_array_equal(diffs[..., goal], 0.0)
    np.testing.assert_array_equal(offsets[..., goal], 0.0)
    other = diffs[..., :goal.start]
    assert abs(other.std() - std) < 0.05 * std and abs(other.mean()) < 0.05 * std
    # The bias is fixed within an episode and differs between envs.
    np.testing.assert_allclose(offsets - offsets[0], 0.0, atol=1e-6)
    assert np.abs(offsets[0, :, :goal.start]).max() > 0.01
    assert not np.allclose(offsets[0, 0], offsets[0, 1], atol=1e-3)
    for vec in (noisy, biased, clean):
        vec.close()
