"""Staged rewards and grasp detection: hand-worked terms, grasp read from real MuJoCo contacts on both backends
(identical), and the wrapper's reward in [0, 1] with 1 on success and the reached gate latched per episode."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from scripted import pick_and_place_actions

import envs
from envs.batched.fetch_task import FetchTask
from envs.batched.starts import held_object_state
from envs.contacts import GRASPED, GraspDetector
from envs.rewards import PlaceGate, StagedReward, StagedScales, staged_reward, staged_terms

LAYOUT = envs.ObservationLayout((("observation", 25), ("achieved_goal", 3), ("desired_goal", 3)))


def _obs(grip, obj, goal) -> np.ndarray:
    obs = np.zeros((1, 31), dtype=np.float32)
    obs[0, 0:3], obs[0, 3:6], obs[0, 28:31] = grip, obj, goal
    return obs


def test_terms_by_hand():
    scales = StagedScales(reach=1.0, grasp=1.0, lift=1.0, place=2.0, success=1.0, place_gate="grasped",
                          sharpness=5.0, lift_height=0.05)
    # Gripper 10 cm from the object, object 20 cm from the goal, held and lifted 2 cm above its 0.42 m start.
    obs = _obs([1.0, 0.1, 0.44], [1.0, 0.0, 0.44], [1.0, 0.0, 0.64])
    terms = staged_terms(obs, LAYOUT, 0.05, scales, grasped=np.array([1.0]), reached=np.array([False]),
                         start_height=np.array([0.42]))
    assert terms["reach"][0] == pytest.approx(1 - np.tanh(0.5), abs=1e-6)
    assert terms["grasp"][0] == 1.0
    assert terms["lift"][0] == pytest.approx(0.4, abs=1e-5)  # 2 cm of 5
    assert terms["place"][0] == pytest.approx(1 - np.tanh(1.0), abs=1e-6)
    assert terms["success"][0] == 0.0
    reward, scaled = staged_reward(terms, scales)
    expected = (terms["reach"] + terms["grasp"] + terms["lift"] + 2 * terms["place"]) / 6.0
    assert reward[0] == pytest.approx(expected[0])
    assert sum(v[0] for v in scaled.values()) == pytest.approx(reward[0])
    # Not grasped: no grasp, lift or (gated) place; success pays the maximum, 1, whatever else holds.
    loose = staged_terms(obs, LAYOUT, 0.05, scales, np.array([0.0]), np.array([False]), np.array([0.42]))
    assert loose["grasp"][0] == loose["lift"][0] == loose["place"][0] == 0.0
    at_goal = _obs([1.0, 0.5, 0.64], [1.0, 0.0, 0.62], [1.0, 0.0, 0.64])
    done = staged_terms(at_goal, LAYOUT, 0.05, scales, np.array([0.0]), np.array([False]), np.array([0.42]))
    assert staged_reward(done, scales)[0][0] == 1.0


def test_reach_offset_targets_the_pre_push_point():
    scales = StagedScales(reach_offset=0.05)
    # Goal in +x of the object: the pre-push point is 5 cm in -x of it, exactly where the gripper is.
    obs = _obs([0.95, 0.0, 0.42], [1.0, 0.0, 0.42], [1.2, 0.0, 0.42])
    terms = staged_terms(obs, LAYOUT, 0.05, scales, np.zeros(1), np.zeros(1, bool), np.zeros(1))
    assert terms["reach"][0] == pytest.approx(1.0)



def test_settle_distance_withholds_success_from_a_sliding_object():
    scales = StagedScales(reach_offset=0.05, settle_distance=0.005)
    # The object 2 cm from the goal (inside the 5 cm threshold): success only if it moved < 5 mm over the step.
    at_goal = _obs([0.9, 0.0, 0.42], [1.18, 0.0, 0.42], [1.2, 0.0, 0.42])
    args = (at_goal, LAYOUT, 0.05, scales, np.zeros(1), np.ones(1, bool), np.zeros(1))
    resting = staged_terms(*args, object_step=np.array([0.004]))
    sliding = staged_terms(*args, object_step=np.array([0.006]))
    assert resting["success"][0] == 1.0 and staged_reward(resting, scales)[0][0] == 1.0
    assert sliding["success"][0] == 0.0
    # Sliding through keeps the shaped terms (place 1 - tanh(5 x 0.02)) but not success's maximum.
    assert sliding["place"][0] == pytest.approx(1 - np.tanh(0.1), abs=1e-6)
    assert staged_reward(sliding, scales)[0][0] == pytest.approx((sliding["reach"][0] + sliding["place"][0]) / 3)
    with pytest.raises(ValueError, match="object_step"):
        staged_terms(*args)
    with pytest.raises(ValueError, match="settle_distance"):
        StagedScales(settle_distance=-0.01)


def test_settle_distance_measures_the_object_step_within_each_episode():
    # A scripted push of the real env: object_step is the object's displacement between consecutive observations,
    # and 0 against the new episode's own start after a reset (not the jump from the old episode's last position).
    scales = StagedScales(reach_offset=0.05, settle_distance=0.005)
    vec = StagedReward(envs.make_vec("FetchPush-v4", 1, seed=1, randomization="none"), "FetchPush-v4", LAYOUT,
                       scales)
    obs, _ = vec.reset(seed=1)
    counts = {"inside, at rest": 0, "inside, sliding": 0}
    for t in range(60):
        before = vec.last_object[0].copy()
        assert before == pytest.approx(obs[0, 3:6].astype(np.float64), abs=1e-6)
        grip, obj, goal = obs[0, 0:3], obs[0, 3:6], obs[0, 28:31]
        behind = obj - 0.05 * (goal - obj) / max(np.linalg.norm(goal - obj), 1e-6)
        target = behind if t < 15 else goal  # go behind the object, then push it through to the goal
        action = np.zeros((1, 4), np.float32)
        action[0, :3] = np.clip(20 * (target - grip), -1, 1)
        obs, _, _, truncated, infos = vec.step(action)
        final = infos["final_obs"][0] if truncated[0] else obs[0]
        step = np.linalg.norm(final[3:6].astype(np.float64) - before)
        inside = np.linalg.norm(final[3:6] - final[28:31]) < 0.05
        if inside:
            counts["inside, at rest" if step < 0.005 else "inside, sliding"] += 1
        assert (infos["reward_terms"]["success"][0] > 0) == (inside and step < 0.005)
    # Seed 1's push reaches the goal (29 steps at rest there) and slides through it on 4 steps: both cases seen.
    assert min(counts.values()) >= 1, counts
    vec.close()

def _contact_data(task: str, state: np.ndarray):
    fetch = FetchTask.from_gym(task)
    data = mujoco.MjData(fetch.model)
    mujoco.mj_setState(fetch.model, data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    mujoco.mj_forward(fetch.model, data)
    return fetch, data


def test_grasp_detection_on_hand_placed_states():
    fetch = FetchTask.from_gym("FetchPickAndPlace-v4")
    detector = GraspDetector(fetch.model)
    # The start state: the object rests on the table, away from the closed fingers.
    _, data = _contact_data("FetchPickAndPlace-v4", fetch.initial_state)
    assert data.ncon > 0 and not detector.grasped(data)
    # Held between both fingers.
    _, held = _contact_data("FetchPickAndPlace-v4", held_object_state(fetch))
    assert detector.grasped(held)
    # Opened fingers around the same object: no finger touches it.
    held.qpos[fetch.finger_qposadr] = 0.05
    mujoco.mj_forward(fetch.model, held)
    assert not detector.grasped(held)


def test_grasp_is_reported_identically_by_both_backends_along_a_scripted_pick():
    grasps = {}
    for backend in ("batched", "sync"):
        vec = envs.make_vec("FetchPickAndPlace-v4", 3, seed=3, backend=backend)
        obs, infos = vec.reset(seed=3)
        series = [infos[GRASPED]]
        for t in range(50):
            obs, _, _, truncated, infos = vec.step(pick_and_place_actions(obs, t))
            series.append(infos["final_info"][GRASPED] if truncated.any() else infos[GRASPED])
        grasps[backend] = np.array(series)
        assert infos["final_info"]["is_success"].tolist() == [1.0, 1.0, 1.0]  # the script does pick and place
        vec.close()
    np.testing.assert_array_equal(grasps["batched"], grasps["sync"])
    assert grasps["batched"][:15].sum() == 0 and grasps["batched"][30:].min() == 1.0  # free, then carried


@pytest.mark.parametrize("backend", ["batched", "sync"])
def test_staged_wrapper_rewards_and_latched_gate(backend):
    scales = StagedScales(reach=1.0, grasp=1.0, lift=1.0, place=1.0, success=1.0, place_gate="grasped")
    vec = StagedReward(envs.make_vec("FetchPickAndPlace-v4", 2, seed=3, backend=backend), "FetchPickAndPlace-v4",
                       LAYOUT, scales)
    obs, _ = vec.reset(seed=3)
    rewards = []
    for t in range(50):
        obs, reward, _, truncated, infos = vec.step(pick_and_place_actions(obs, t))
        terms = infos["reward_terms"]
        total = sum(terms.values())
        success = terms["success"] > 0
        np.testing.assert_allclose(reward[~success], total[~success])
        assert np.all(reward[success] == 1.0)
        rewards.append(reward)
    rewards = np.array(rewards)
    assert rewards.min() >= 0.0 and rewards.max() == 1.0
    assert rewards[30:].mean() > rewards[:10].mean() + 0.3  # carrying pays far more than the approach
    vec.close()


def test_reached_gate_latches_and_clears_with_the_episode():
    scales = StagedScales(place_gate=PlaceGate.REACHED, reach_offset=0.0, reached_distance=0.06)
    vec = StagedReward(envs.make_vec("FetchPush-v4", 1, seed=1), "FetchPush-v4", LAYOUT, scales)
    obs, _ = vec.reset(seed=1)
    assert not vec.reached[0]
    for t in range(50):
        grip, obj = obs[0, 0:3], obs[0, 3:6]
        # Hover 5 cm over the object (inside 6 cm), then rise 30 cm away from it.
        target = obj + np.array([0.0, 0.0, 0.05 if t < 25 else 0.3])
        action = np.zeros((1, 4), np.float32)
        action[0, :3] = np.clip(10 * (target - grip), -1, 1)
        obs, _, _, truncated, infos = vec.step(action)
        if t == 24:
            assert vec.reached[0] and infos["reward_terms"]["place"][0] > 0
        if t == 48:
            assert np.linalg.norm(obs[0, 0:3] - obs[0, 3:6]) > 0.2
            assert vec.reached[0] and infos["reward_terms"]["place"][0] > 0  # latched though far away now
        if truncated[0]:
            assert not vec.reached[0]  # the next episode starts with the gate closed again
    vec.close()


def test_action_rate_penalty_by_hand_and_zero_on_each_episode_start():
    # Two envs: the same trajectory of actions, one without the penalty; the difference is the penalty alone.
    scales = StagedScales(place_gate=PlaceGate.REACHED, reach_offset=0.05)
    plain = StagedReward(envs.make_vec("FetchPush-v4", 1, seed=3), "FetchPush-v4", LAYOUT, scales)
    scales = StagedScales(place_gate=PlaceGate.REACHED, reach_offset=0.05, action_rate=0.5)
    penalised = StagedReward(envs.make_vec("FetchPush-v4", 1, seed=3), "FetchPush-v4", LAYOUT, scales)
    plain.reset(seed=3)
    penalised.reset(seed=3)
    # Fetch's bounds are [-1, 1] (range 2); 1.5 lies outside and counts as 1 (clipped, as the robot receives it).
    actions = [[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, -1.0, 0.5, 0.0], [1.5, -1.0, 0.5, 0.0]]
    expected = [0.0, (0.5**2) / 4, (0.5**2 + 0.25**2) / 4, 0.0]  # ((change) / range)^2, mean over 4 dimensions
    for t in range(50):
        action = np.array([actions[t % 4]], np.float32)
        _, r_plain, _, truncated, _ = plain.step(action)
        _, r_pen, _, _, infos = penalised.step(action)
        if t < 4:
            assert infos["reward_terms"]["action_rate"][0] == pytest.approx(-0.5 * expected[t])
            assert r_pen[0] == pytest.approx(r_plain[0] - 0.5 * expected[t])
    assert truncated[0]  # 50 steps: the episode ended, the next step is a first step again
    _, r_plain, _, _, _ = plain.step(np.array([[-1.0, 1.0, 1.0, 1.0]], np.float32))
    _, r_pen, _, _, infos = penalised.step(np.array([[-1.0, 1.0, 1.0, 1.0]], np.float32))
    assert infos["reward_terms"]["action_rate"][0] == 0.0 and r_pen[0] == r_plain[0]
    with pytest.raises(ValueError, match="action_rate"):
        StagedScales(action_rate=-0.1)
    plain.close()
    penalised.close()


def test_grasp_terms_need_free_fingers():
    with pytest.raises(ValueError, match="FetchPickAndPlace"):
        StagedReward(envs.make_vec("FetchPush-v4", 1, seed=0), "FetchPush-v4", LAYOUT, StagedScales(grasp=1.0))
    with pytest.raises(ValueError, match="--reward task"):
        StagedReward(envs.make_vec("FetchReach-v4", 1, seed=0), "FetchReach-v4", LAYOUT, StagedScales())


def test_reference_env_info_has_grasped():
    env = envs.make_env("FetchPickAndPlace-v4", seed=0)
    _, info = env.reset(seed=0)
    assert info[GRASPED] == 0.0
    assert isinstance(env, gym.Env)
