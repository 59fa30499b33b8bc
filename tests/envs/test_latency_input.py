"""The latency input (envs/latency_input.py): the episode's action delay, in control steps, appended to the
observation; on the sync and batched backends, through autoresets, and equal to the delay the arm shows."""

import numpy as np
import pytest

import envs
from envs.latency_input import LATENCY_FIELD, LatencyInput, VecLatencyInput

BACKENDS = ["sync", "batched"]


def uniform_latency_spec(tmp_path, high=3):
    path = tmp_path / "latency.toml"
    path.write_text(f'[action_latency]\ndistribution = "uniform"\nlow = 0\nhigh = {high}\n')
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_vector_latency_input_is_each_episodes_delay_through_autoresets(tmp_path, backend):
    n, spec = 4, uniform_latency_spec(tmp_path)
    raw = envs.make_vec("FetchReach-v4", n, 5, spec, backend=backend)
    told = VecLatencyInput(envs.make_vec("FetchReach-v4", n, 5, spec, backend=backend),
                           envs.privileged_names(raw))
    column = envs.privileged_names(raw).index("action_latency")
    assert told.single_observation_space.shape == (raw.single_observation_space.shape[0] + 1,)
    obs_raw, _ = raw.reset(seed=5)
    obs, info = told.reset(seed=5)
    assert obs.shape == (n, obs_raw.shape[1] + 1) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[:, :-1], obs_raw)  # the task's values untouched
    np.testing.assert_array_equal(obs[:, -1], info["privileged_params"][:, column])
    seen, ends = set(obs[:, -1]), 0
    rng = np.random.default_rng(0)
    for _ in range(120):  # FetchReach: 50-step episodes, so two autoresets per env
        actions = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
        obs_raw, *_ = raw.step(actions)
        obs, _, terminated, truncated, info = told.step(actions)
        np.testing.assert_array_equal(obs[:, :-1], obs_raw)
        np.testing.assert_array_equal(obs[:, -1], info["privileged_params"][:, column])  # the new episode's
        for i in np.flatnonzero(terminated | truncated):
            ends += 1
            assert info["final_obs"][i].shape == (obs.shape[1],)
            assert info["final_obs"][i][-1] == info["final_info"]["privileged_params"][i, column]  # the ended one's
        seen |= set(obs[:, -1])
    assert ends == 2 * n
    assert seen <= {0.0, 1.0, 2.0, 3.0} and len(seen) >= 3  # whole steps, and they do vary
    raw.close()
    told.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_an_action_latency_in_the_spec_the_input_is_zero(backend):
    vec = envs.make_vec("FetchReach-v4", 2, 0, "none", backend=backend)
    told = VecLatencyInput(vec, envs.privileged_names(vec))
    obs, _ = told.reset(seed=0)
    for _ in range(55):
        obs, _, terminated, truncated, info = told.step(np.zeros((2, 4), np.float32))
        assert np.all(obs[:, -1] == 0)
    told.close()


@pytest.mark.parametrize(("profile", "delay"), [("nominal", 0), ("latency_2", 2), ("latency_3", 3)])
def test_the_field_is_the_delay_the_gripper_shows(profile, delay):
    """One env under a shipped profile: the field reads d, and a command to move reaches the gripper d steps late."""
    env = LatencyInput(envs.make_env("FetchReach-v4", seed=0, profile=profile))
    assert env.get_wrapper_attr("layout").names[-1] == LATENCY_FIELD
    obs, _ = env.reset(seed=0)
    assert obs[-1] == delay
    start = obs[0]  # the gripper's x
    moved = []
    for _ in range(delay + 1):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
        assert obs[-1] == delay
        moved.append(obs[0] - start)
    assert all(abs(m) < 2e-3 for m in moved[:delay]), moved  # the neutral commands still in the pipeline
    assert moved[delay] > 5e-3, moved  # then the first +x command
    env.close()


def test_told_latency_reads_the_layout():
    from envs.latency_input import LATENCY_FIELD, told_latency

    plain = (("observation", 25), ("achieved_goal", 3), ("desired_goal", 3))
    assert not told_latency(plain)
    assert told_latency((*plain, (LATENCY_FIELD, 1)))
    assert told_latency([list(pair) for pair in (*plain, (LATENCY_FIELD, 1))])  # JSON metadata gives lists
