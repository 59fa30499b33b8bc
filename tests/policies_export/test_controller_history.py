"""Controller with history: one raw observation per act(), stacked exactly as envs/history.py stacks in training.

Fixture: obs 5, actions 2 in [0, 1] x [-2, 2] (midpoint (0.5, 0), neutral action (0, 0)), K = 3, M = 2, so the
graph takes 3 * 5 + 2 * 2 = 19 values: action = clip(W x + b).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from policy_fixtures import B, make_metadata

from policies_export import Controller, ObservationError, PolicyFileError
from policies_export.safety import Intervention

LOW, HIGH = np.array([0.0, -2.0]), np.array([1.0, 2.0])
MID = (LOW + HIGH) / 2
W19 = np.random.default_rng(0).normal(scale=0.2, size=(2, 19)).astype(np.float32)
OBS = [np.arange(5, dtype=np.float32) + 10 * t for t in range(5)]  # o_t = [10t, 10t + 1, ..., 10t + 4]
NAN_OBS = np.array([0.0, np.nan, 0.0, 0.0, 0.0])


def stack(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32)


def action_for(x: np.ndarray) -> np.ndarray:
    return np.clip(W19.astype(np.float64) @ x + B, LOW, HIGH)


@pytest.fixture
def history_policy(write_policy: Callable[..., Path]) -> Path:
    meta = make_metadata(action_low=tuple(LOW), action_high=tuple(HIGH), history={"observations": 3, "actions": 2})
    return write_policy("history.onnx", metadata=meta, weight=W19)


def test_act_stacks_observations_and_sent_actions_newest_last(history_policy: Path) -> None:
    ctrl = Controller.load(history_policy)
    assert (ctrl.obs_dim, ctrl.input_dim) == (5, 19)
    o0, o1, o2, o3 = OBS[:4]
    a0 = ctrl.act(o0)  # the first observation fills the history; the actions start at the bounds' midpoint
    np.testing.assert_array_equal(ctrl.last_input, stack(o0, o0, o0, MID, MID))
    np.testing.assert_allclose(a0, action_for(ctrl.last_input), atol=1e-6)
    a1 = ctrl.act(o1.tolist())
    np.testing.assert_array_equal(ctrl.last_input, stack(o0, o0, o1, MID, a0))
    a2 = ctrl.act({"goal": o2[3:], "joint_pos": o2[:3]})  # dict input stacks the same
    np.testing.assert_array_equal(ctrl.last_input, stack(o0, o1, o2, a0, a1))
    a3 = ctrl.act(o3)
    np.testing.assert_array_equal(ctrl.last_input, stack(o1, o2, o3, a1, a2))
    np.testing.assert_allclose(a3, action_for(ctrl.last_input), atol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        ctrl.last_input[0] = 1.0


def test_a_rejected_observation_never_enters_the_history_and_the_safe_action_does(history_policy: Path) -> None:
    ctrl = Controller.load(history_policy)  # safe_action "hold": the safe action is the last action sent
    o0, o1, _, o3 = OBS[:4]
    a0 = ctrl.act(o0)
    a1 = ctrl.act(o1)
    held = ctrl.act(NAN_OBS)
    np.testing.assert_array_equal(held, a1)
    assert ctrl.stats["fallbacks"] == 1
    # The tick still passed: the last accepted observation is repeated and the actions moved on.
    np.testing.assert_array_equal(ctrl.last_input, stack(o0, o1, o1, a0, a1))
    a3 = ctrl.act(o3)
    np.testing.assert_array_equal(ctrl.last_input, stack(o1, o1, o3, a1, held))
    # A tick without any observation (robot.read() raised) advances the history the same way.
    a4 = ctrl.act(OBS[4])
    np.testing.assert_array_equal(ctrl.fallback(Intervention.ROBOT_ERROR, "read failed"), a4)
    np.testing.assert_array_equal(ctrl.last_input, stack(o3, OBS[4], OBS[4], a3, a4))


def test_reset_starts_the_history_over(history_policy: Path) -> None:
    ctrl = Controller.load(history_policy)
    for obs in OBS[:3]:
        ctrl.act(obs)
    ctrl.reset()
    ctrl.act(OBS[3])
    np.testing.assert_array_equal(ctrl.last_input, stack(OBS[3], OBS[3], OBS[3], MID, MID))
    # A rejected first observation leaves it empty: the first accepted one fills it.
    ctrl.reset()
    np.testing.assert_array_equal(ctrl.act(NAN_OBS), ctrl.neutral_action)
    ctrl.act(OBS[4])
    np.testing.assert_array_equal(ctrl.last_input, stack(OBS[4], OBS[4], OBS[4], MID, MID))


def test_act_still_checks_one_raw_observation(history_policy: Path) -> None:
    ctrl = Controller.load(history_policy)
    with pytest.raises(ObservationError, match="obs has 19 values, policy expects 5"):
        ctrl.act(np.zeros(19))


def test_act_batch_takes_stacked_inputs_and_says_how_to_act_on_raw_ones(history_policy: Path) -> None:
    ctrl = Controller.load(history_policy)
    with pytest.raises(ObservationError, match=r"stacked inputs \(B, 19\).*use act\(\) once per tick"):
        ctrl.act_batch(np.zeros((4, 5)))
    ctrl.act(OBS[0])
    ctrl.act(OBS[1])
    inputs = np.stack([ctrl.last_input, stack(OBS[2], OBS[2], OBS[2], MID, MID)])
    np.testing.assert_allclose(ctrl.act_batch(inputs), np.stack([action_for(x) for x in inputs]), atol=1e-6)
    # A stacked action outside the bounds is an input no training run produced: the neutral action, counted.
    bad = inputs[:1].copy()
    bad[0, -1] = 5.0
    np.testing.assert_array_equal(ctrl.act_batch(bad), ctrl.neutral_action[None])
    assert ctrl.stats["interventions"]["obs_out_of_range"] == 1


def test_graph_input_must_be_the_stacked_size(write_policy: Callable[..., Path]) -> None:
    path = write_policy(metadata=make_metadata(history={"observations": 2, "actions": 1}))  # graph takes 5
    with pytest.raises(PolicyFileError, match=r"an input of 12 values \(history: last 2 observations \+ last 1 action"):
        Controller.load(path)
