"""Shaped rewards: hand-worked terms, the wrapper's sum of scaled terms, and the final step's reward taken from
the true final state rather than the reset observation."""

import numpy as np
import pytest

import envs
from envs.rewards import RewardScales, ShapedReward, reward_terms

PUSH_LAYOUT = envs.ObservationLayout((("observation", 25), ("achieved_goal", 3), ("desired_goal", 3)))


def test_terms_by_hand():
    obs = np.zeros((2, 31), dtype=np.float32)
    obs[0, 0:3] = [1.0, 0.0, 0.0]  # gripper
    obs[0, 3:6] = [1.0, 0.3, 0.4]  # object: 0.5 m from the gripper
    obs[0, 28:31] = [1.0, 0.3, 0.43]  # goal: 3 cm from the object, inside the 5 cm threshold
    obs[1, 3:6] = [0.0, 0.0, 0.0]
    obs[1, 28:31] = [0.06, 0.0, 0.0]  # 6 cm: outside
    terms = reward_terms(obs, PUSH_LAYOUT, distance_threshold=0.05)
    np.testing.assert_allclose(terms["reach"], [-0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(terms["goal"], [-0.03, -0.06], atol=1e-6)
    np.testing.assert_array_equal(terms["success"], [1.0, 0.0])
    # reach_offset: the target sits 5 cm behind the object on the goal-object line, here at (1, 0.3, 0.35).
    behind = reward_terms(obs, PUSH_LAYOUT, 0.05, reach_offset=0.05)
    np.testing.assert_allclose(behind["reach"], [-np.sqrt(0.3**2 + 0.35**2), -0.05], atol=1e-6)
    np.testing.assert_array_equal(behind["goal"], terms["goal"])


@pytest.mark.parametrize("backend", ["batched", "sync"])
def test_wrapper_sums_scaled_terms_and_uses_the_final_state(backend):
    scales = RewardScales(reach=0.5, goal=3.0, success=2.0)
    vec = ShapedReward(envs.make_vec("FetchPush-v4", 2, seed=5, backend=backend), "FetchPush-v4", PUSH_LAYOUT, scales)
    rng = np.random.default_rng(0)
    obs, _ = vec.reset(seed=5)
    ended = 0
    for _ in range(52):
        state = obs.copy()
        obs, reward, terminated, truncated, infos = vec.step(rng.uniform(-1, 1, (2, 4)).astype(np.float32))
        terms = infos["reward_terms"]
        np.testing.assert_allclose(reward, terms["reach"] + terms["goal"] + terms["success"])
        for i in np.flatnonzero(truncated):
            ended += 1
            final = infos["final_obs"][i][None]
            expected = reward_terms(final, PUSH_LAYOUT, 0.05)
            assert reward[i] == pytest.approx(0.5 * expected["reach"][0] + 3.0 * expected["goal"][0]
                                              + 2.0 * expected["success"][0])
            # Not the reset observation's reward: the new episode starts elsewhere.
            assert not np.allclose(final, obs[i])
        assert state.shape == obs.shape
    assert ended == 2  # both 50-step episodes ended inside the loop
    vec.close()


def test_needs_an_object_task():
    with pytest.raises(ValueError, match="--reward task"):
        ShapedReward(envs.make_vec("FetchReach-v4", 1, seed=0), "FetchReach-v4", PUSH_LAYOUT, RewardScales())
