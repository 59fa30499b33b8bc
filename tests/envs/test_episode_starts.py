"""Training-only episode starts on the batched backend: near-grasp resets and the in-air goal fraction."""

import numpy as np
import pytest

import envs
from envs.batched.starts import EpisodeStarts
from envs.contacts import GRASPED

TABLE_TOP = 0.4249  # FetchPickAndPlace's object start height (height_offset)


def _resets(starts: EpisodeStarts, episodes: int = 4, num_envs: int = 16, seed: int = 0):
    """Goals and grasp flags of num_envs x episodes fresh episodes."""
    vec = envs.make_vec("FetchPickAndPlace-v4", num_envs, seed=seed, backend="batched", starts=starts)
    goals, grasped, heights = [], [], []
    for k in range(episodes):
        obs, infos = vec.reset(seed=seed + 1000 * k)
        goals.append(obs[:, 28:31].copy())
        grasped.append(infos[GRASPED].copy())
        heights.append(obs[:, 5].copy())
    vec.close()
    return np.concatenate(goals), np.concatenate(grasped), np.concatenate(heights)


def test_near_grasp_starts_hold_the_object_in_the_air():
    goals, grasped, heights = _resets(EpisodeStarts(near_grasp=1.0), episodes=1, num_envs=4)
    assert grasped.tolist() == [1.0] * 4
    assert np.all(heights > TABLE_TOP + 0.08)  # at the gripper's start pose, ~11 cm above the table
    # The held object stays held when the fingers keep closing, and drops when they open.
    vec = envs.make_vec("FetchPickAndPlace-v4", 2, seed=0, backend="batched", starts=EpisodeStarts(near_grasp=1.0))
    obs, _ = vec.reset(seed=0)
    action = np.zeros((2, 4), np.float32)
    action[:, 3] = [-1.0, 1.0]
    for _ in range(10):
        obs, _, _, _, infos = vec.step(action)
    assert infos[GRASPED].tolist() == [1.0, 0.0]
    assert obs[0, 5] > TABLE_TOP + 0.08 and obs[1, 5] < TABLE_TOP + 0.01
    vec.close()


def test_near_grasp_fraction_and_air_goal_fraction_are_what_they_say():
    _, grasped, _ = _resets(EpisodeStarts(near_grasp=0.25), episodes=10, num_envs=32)
    assert grasped.mean() == pytest.approx(0.25, abs=0.05)  # 320 resets: 3 standard errors ~ 0.07
    goals, grasped, _ = _resets(EpisodeStarts(air_goal=0.0), episodes=4)
    assert np.allclose(goals[:, 2], TABLE_TOP, atol=1e-3) and grasped.sum() == 0
    goals, _, _ = _resets(EpisodeStarts(air_goal=1.0), episodes=4)
    assert np.all(goals[:, 2] > TABLE_TOP + 1e-4)
    goals, _, _ = _resets(EpisodeStarts(), episodes=10, num_envs=32)
    assert (goals[:, 2] > TABLE_TOP + 1e-4).mean() == pytest.approx(0.5, abs=0.09)


def test_default_starts_keep_the_reference_episodes():
    # Same seed: the task's own start distribution with or without an explicit EpisodeStarts().
    a, _, _ = _resets(EpisodeStarts(), episodes=2)
    b, _, _ = _resets(EpisodeStarts(air_goal=0.5), episodes=2)
    np.testing.assert_array_equal(a, b)
    reference = envs.make_vec("FetchPickAndPlace-v4", 16, seed=0, backend="sync")
    obs, _ = reference.reset(seed=0)
    np.testing.assert_allclose(obs[:, 28:31], a[:16], atol=1e-6)
    reference.close()


def test_options_are_refused_where_they_do_not_apply():
    with pytest.raises(ValueError, match="batched"):
        envs.make_vec("FetchPickAndPlace-v4", 1, seed=0, backend="sync", starts=EpisodeStarts(near_grasp=0.1))
    with pytest.raises(ValueError, match="free fingers"):
        envs.make_vec("FetchPush-v4", 1, seed=0, backend="batched", starts=EpisodeStarts(near_grasp=0.1))
    with pytest.raises(ValueError, match="no in-air goals"):
        envs.make_vec("FetchPush-v4", 1, seed=0, backend="batched", starts=EpisodeStarts(air_goal=0.2))
    with pytest.raises(ValueError, match="fraction"):
        EpisodeStarts(near_grasp=1.5)
