import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.batched import BatchedFetchVecEnv


def run_to_time_limit(vec, seed):
    """Reset, then step 50 times with a fixed action sequence; return what the 50th step reported."""
    obs, info = vec.reset(seed=seed)
    rng = np.random.default_rng(0)
    trace = [obs]
    for _ in range(50):
        obs, reward, terminated, truncated, info = vec.step(
            rng.uniform(-1, 1, (vec.num_envs, 4)).astype(np.float32)
        )
        trace.append(obs)
    return np.array(trace), terminated, truncated, info


@pytest.mark.parametrize("backend", ["sync", "subprocess", "batched"])
def test_make_vec_same_step_final_obs(backend):
    vec = envs.make_vec("FetchPush-v4", num_envs=2, seed=5, randomization="default", backend=backend)
    try:
        assert vec.observation_space.shape == (2, 31)
        assert vec.single_action_space.shape == (4,)
        obs, info = vec.reset(seed=5)
        assert obs.shape == (2, 31) and obs.dtype == np.float32
        assert info["randomization"]["object_mass"].shape == (2,)
        assert info["randomization"]["object_mass"][0] != info["randomization"]["object_mass"][1]
        rng = np.random.default_rng(0)
        for step in range(50):
            action = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
            obs, reward, terminated, truncated, info = vec.step(action)
            if step < 49:
                assert not truncated.any() and "final_obs" not in info
        assert truncated.all() and not terminated.any()
        final_obs = info["final_obs"]
        assert final_obs.shape == (2,) and final_obs[0].shape == (31,) and final_obs[0].dtype == np.float32
        assert "is_success" in info["final_info"]
        # Privileged information on every backend: the ended episode's in final_info, the new one's at top level.
        p = len(envs.privileged_names(vec))
        assert info["final_info"]["clean_obs"].shape == info["clean_obs"].shape == (2, 31)
        assert info["final_info"]["privileged_params"].shape == info["privileged_params"].shape == (2, p)
        assert p > 0 and info["_privileged_params"].all() and info["final_info"]["_privileged_params"].all()
        # The returned obs is already the next episode's reset obs, with freshly sampled values.
        assert not np.array_equal(final_obs[0], obs[0])
        assert "randomization" in info and info["_randomization"].all()
    finally:
        vec.close()
    assert vec.closed


def test_make_vec_reproducible_and_seeded_per_env():
    a = envs.make_vec("FetchPush-v4", num_envs=2, seed=11, randomization="default")
    b = envs.make_vec("FetchPush-v4", num_envs=2, seed=11, randomization="default")
    c = envs.make_vec("FetchPush-v4", num_envs=2, seed=12, randomization="default")
    ta, *_ = run_to_time_limit(a, 11)
    tb, *_ = run_to_time_limit(b, 11)
    tc, *_ = run_to_time_limit(c, 12)
    np.testing.assert_array_equal(ta, tb)
    assert not np.array_equal(ta, tc)
    # Env 1 of seed 11 is env 0 of seed 12 (seed + i) at reset.
    np.testing.assert_array_equal(ta[0, 1], tc[0, 0])
    # A first reset without a seed uses each sub-env's constructor seed.
    d = envs.make_vec("FetchPush-v4", num_envs=2, seed=11, randomization="default")
    obs, _ = d.reset()
    np.testing.assert_array_equal(obs, ta[0])
    for vec in (a, b, c, d):
        vec.close()


def test_auto_backend_is_batched_for_fetch_and_sync_otherwise():
    fetch = envs.make_vec("FetchReachDense-v4", num_envs=2, seed=0)
    pendulum = envs.make_vec("Pendulum-v1", num_envs=2, seed=0)
    assert isinstance(fetch, BatchedFetchVecEnv)
    assert isinstance(pendulum, gym.vector.SyncVectorEnv)
    fetch.close()
    pendulum.close()
    with pytest.raises(ValueError, match="no batched backend"):
        envs.make_vec("Pendulum-v1", num_envs=1, seed=0, backend="batched")


def test_make_vec_rejects_bad_arguments():
    with pytest.raises(ValueError, match="backend 'threads'"):
        envs.make_vec("Pendulum-v1", num_envs=1, seed=0, backend="threads")
    with pytest.raises(ValueError, match="num_envs"):
        envs.make_vec("Pendulum-v1", num_envs=0, seed=0)
