"""Controller with a recurrent policy: it holds the state, starts and resets it at zeros, feeds it back every tick,
and leaves it untouched on every tick that sends the safe action.

Fixture (policy_fixtures.py): an accumulator memory c_t = c_{t-1} + V x_t, action = clip(W2 tanh(c_t) + b), so every
expected action is a hand computation and the state is visibly what the past observations summed to.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from policy_fixtures import (
    H,
    build_recurrent_model,
    make_metadata,
    recurrence_dict,
    recurrent_reference,
)

from policies_export import Controller, ObservationError, PolicyFileError, integrity
from policies_export.loop import LoopConfig, run_loop
from policies_export.metadata import PolicyMetadata, Recurrence
from policies_export.safety import Intervention, SafetyConfig

OBS = np.random.default_rng(3).normal(scale=0.8, size=(12, 5))
NAN_OBS = np.array([0.0, np.nan, 0.0, 0.0, 0.0])


@pytest.fixture
def write_recurrent(tmp_path: Path) -> Callable[..., Path]:
    """write_recurrent(kind="lstm", metadata=..., **build_recurrent_model kwargs) -> a stamped policy file."""

    def _write(name: str = "rnn.onnx", *, kind: str = "lstm", metadata: PolicyMetadata | None = None,
               **kwargs) -> Path:
        meta = metadata or make_metadata(recurrence=recurrence_dict(kind))
        text = dataclasses.replace(meta, sha256=integrity.PLACEHOLDER).to_json()
        data, _ = integrity.stamp(build_recurrent_model(kind=kind, metadata_json=text, **kwargs).SerializeToString())
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write


def memory_of(ctrl: Controller) -> np.ndarray:
    """The accumulator (H,): the last state tensor (c for an LSTM, h for a GRU)."""
    return ctrl.state[-1][0, 0]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_load_checks_the_state_signature_digest_and_bounds(write_recurrent, kind):
    ctrl = Controller.load(write_recurrent(kind=kind))
    rec = ctrl.metadata.recurrence
    assert rec == Recurrence.standard(kind, 1, H) and rec.shape == (1, "batch", H)
    assert ctrl.digest_verified and ctrl.bounds_verified  # the probe ran with a zero state
    assert [s.shape for s in ctrl.state] == [(1, 1, H)] * len(rec.inputs)
    assert all((s == 0).all() for s in ctrl.state)


def test_act_feeds_the_state_back_tick_after_tick(write_recurrent):
    ctrl = Controller.load(write_recurrent())
    expected, memory = recurrent_reference(OBS)
    got = np.stack([ctrl.act(obs) for obs in OBS])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(memory_of(ctrl), memory, atol=1e-5)
    h, c = ctrl.state
    np.testing.assert_allclose(h, np.tanh(c), atol=1e-6)  # h_out fed back as h_in too


def test_reset_starts_the_state_over_at_zeros(write_recurrent):
    ctrl = Controller.load(write_recurrent())
    for obs in OBS[:5]:
        ctrl.act(obs)
    ctrl.reset()
    assert all((s == 0).all() for s in ctrl.state)
    np.testing.assert_allclose(np.stack([ctrl.act(obs) for obs in OBS[5:]]), recurrent_reference(OBS[5:])[0],
                               atol=1e-5)


def test_a_rejected_observation_never_enters_the_state(write_recurrent):
    ctrl = Controller.load(write_recurrent())  # safe_action "hold"
    for obs in OBS[:3]:
        ctrl.act(obs)
    before = ctrl.state
    held = ctrl.act(NAN_OBS)
    assert ctrl.stats["interventions"]["nonfinite_obs"] == 1
    assert all(np.array_equal(a, b) for a, b in zip(ctrl.state, before, strict=True))
    # A tick without an observation (robot.read() raised) and an e-stop hold it too.
    np.testing.assert_array_equal(ctrl.fallback(Intervention.ROBOT_ERROR, "read failed"), held)
    ctrl.safety.engage_estop()
    ctrl.act(OBS[3])
    ctrl.safety.release_estop()
    assert all(np.array_equal(a, b) for a, b in zip(ctrl.state, before, strict=True))
    # The next accepted observation continues from the held state: as if the faulty ticks never happened.
    expected, _ = recurrent_reference(OBS[[0, 1, 2, 4]])
    np.testing.assert_allclose(ctrl.act(OBS[4]), expected[3], atol=1e-5)


def test_a_non_finite_next_state_is_a_model_fault_and_the_state_holds(write_recurrent):
    """Values within float32 whose accumulated sum overflows: c_out = inf while the action (tanh(inf) = 1) is
    finite. The safety layer sends the safe action and the inf never becomes the state."""
    ctrl = Controller.load(write_recurrent())
    huge = np.array([3e38, -3e38, 0.0, 3e38, 3e38])  # V's first row makes 2.1e38 of it: c = 2.1e38, then inf
    first = ctrl.act(huge)
    before = ctrl.state
    assert before[1][0, 0, 0] == pytest.approx(2.1e38, rel=1e-6)
    np.testing.assert_array_equal(ctrl.act(huge), first)  # held
    kind, detail = ctrl.safety.events[0]
    assert kind is Intervention.NONFINITE_ACTION and "'c_out'" in detail and "state holds" in detail
    assert all(np.array_equal(a, b) for a, b in zip(ctrl.state, before, strict=True))
    assert all(np.isfinite(s).all() for s in ctrl.state)


def test_run_loop_resets_the_state_at_every_episode_boundary(write_recurrent):
    """An episodic robot of 3 episodes x 4 ticks: each episode's actions are those of a fresh controller."""

    class ThreeEpisodes:
        def __init__(self) -> None:
            self.episode, self.tick, self.applied = 0, 0, []

        def read(self) -> np.ndarray:
            return OBS[4 * self.episode + self.tick]

        def apply(self, action: np.ndarray) -> None:
            self.applied.append(action.copy())
            self.tick += 1

        def time(self) -> float:
            return float(4 * self.episode + self.tick)

        def episode_done(self) -> bool:
            return self.tick == 4

        def reset(self) -> None:
            self.episode, self.tick = self.episode + 1, 0

    ctrl = Controller.load(write_recurrent())
    ctrl.act(OBS[11])  # a state left over from before the loop: run_loop starts from zeros
    robot = ThreeEpisodes()
    result = run_loop(ctrl, robot, LoopConfig(realtime=False, max_episodes=3))
    assert result.ok and len(robot.applied) == 12
    for e in range(3):
        np.testing.assert_allclose(np.stack(robot.applied[4 * e : 4 * e + 4]),
                                   recurrent_reference(OBS[4 * e : 4 * e + 4])[0], atol=1e-5)


def test_warm_up_leaves_the_state_untouched(write_recurrent):
    ctrl = Controller.load(write_recurrent())
    ctrl.act(OBS[0])
    before = ctrl.state
    ctrl.warm_up(3)
    assert all(np.array_equal(a, b) for a, b in zip(ctrl.state, before, strict=True))


def test_act_batch_with_state_takes_and_returns_the_callers_states(write_recurrent):
    ctrl = Controller.load(write_recurrent(kind="gru"))
    with pytest.raises(ObservationError, match=r"act_batch is stateless.*gru.*act_batch_with_state"):
        ctrl.act_batch(OBS[:2])
    state = ctrl.initial_state(3)
    actions = []
    for t in range(4):  # three robots, robot 1 sees a NaN at tick 2
        obs = OBS[[t, t + 4, t + 8]].copy()
        if t == 2:
            obs[1] = NAN_OBS
        before = state[0].copy()
        step, state = ctrl.act_batch_with_state(obs, state)
        if t == 2:
            np.testing.assert_array_equal(step[1], ctrl.neutral_action)
            np.testing.assert_array_equal(state[0][:, 1], before[:, 1])  # its state held
        actions.append(step)
    actions = np.stack(actions)
    for robot, first in ((0, 0), (2, 8)):
        np.testing.assert_allclose(actions[:, robot], recurrent_reference(OBS[first : first + 4])[0], atol=1e-5)
    held = np.stack([OBS[4], OBS[5], OBS[7]])  # robot 1 acted on ticks 0, 1, 3 only
    np.testing.assert_allclose(actions[3, 1], recurrent_reference(held)[0][-1], atol=1e-5)
    assert ctrl.stats["interventions"]["nonfinite_obs"] == 1
    assert all((s == 0).all() for s in ctrl.state)  # the controller's own state was not touched
    with pytest.raises(ObservationError, match=r"policy expects 1 array\(s\) \(h_in\) of shape \(1, 3, 3\)"):
        ctrl.act_batch_with_state(OBS[:3], (np.zeros((1, 2, H)),))


def test_history_and_recurrence_combine(write_recurrent):
    """The memory runs on the stacked input: 2 observations + 1 action = 12 values."""
    meta = make_metadata(recurrence=recurrence_dict(), history={"observations": 2, "actions": 1})
    ctrl = Controller.load(write_recurrent(metadata=meta, input_dim=12))
    assert ctrl.input_dim == 12
    ctrl.act(OBS[0])
    ctrl.act(OBS[1])
    np.testing.assert_array_equal(ctrl.last_input[:10], np.concatenate([OBS[0], OBS[1]]).astype(np.float32))
    assert np.abs(memory_of(ctrl)).sum() > 0


def test_metadata_round_trips_and_inspect_describes_the_state():
    meta = make_metadata(recurrence=recurrence_dict())
    again = PolicyMetadata.from_json(meta.to_json())
    assert again.recurrence == meta.recurrence
    assert json.loads(meta.to_json())["recurrence"]["shape"] == [1, "batch", 3]
    assert ("memory            lstm, 1 layer x 3: state inputs h_in, c_in [1, batch, 3] -> outputs h_out, c_out; "
            "zeros at an episode's start") in meta.describe()
    assert "memory            none (feed-forward" in make_metadata().describe()
    assert "recurrence" not in json.loads(make_metadata().to_json())  # older readers see the document they knew


@pytest.mark.parametrize("change,message", [
    ({"kind": "rnn"}, r"recurrence.kind must be one of \['gru', 'lstm'\]"),
    ({"inputs": ["h_in"]}, r"must name the 2 state tensor\(s\) of a lstm"),
    ({"reset": "keep"}, r"implements only \"zeros at an episode's start\""),
    ({"shape": [2, "batch", 3]}, r"shape is \[2, 'batch', 3\], but layers and hidden_size say \[1, 'batch', 3\]"),
    ({"outputs": ["h_out", "obs"]}, "distinct from each other and from obs"),
])
def test_a_bad_recurrence_is_refused(change, message):
    doc = json.loads(make_metadata().to_json())
    doc["recurrence"] = {**recurrence_dict(), **change}
    with pytest.raises(PolicyFileError, match=message):
        PolicyMetadata.from_json(json.dumps(doc))


def test_graph_and_metadata_must_agree_on_the_state(write_recurrent, write_policy):
    with pytest.raises(PolicyFileError, match=r"graph inputs are \['obs', 'h_in', 'state_c'\].*state inputs "
                                              r"\['h_in', 'c_in'\]"):
        Controller.load(write_recurrent(state_inputs=("h_in", "state_c")))
    with pytest.raises(PolicyFileError, match=r"graph 'h_in' .*recurrence says float \[2, batch, 3\]"):
        Controller.load(write_recurrent(metadata=make_metadata(recurrence={**recurrence_dict(), "layers": 2,
                                                                           "shape": [2, "batch", 3]})))
    with pytest.raises(PolicyFileError, match=r"exactly one input named 'obs' \(a recurrent graph's metadata"):
        Controller.load(write_recurrent(metadata=make_metadata()))
    with pytest.raises(PolicyFileError, match=r"state inputs \['h_in', 'c_in'\]"):  # a feed-forward graph
        Controller.load(write_policy(metadata=make_metadata(recurrence=recurrence_dict())))


def test_range_check_and_safety_config_apply_to_recurrent_ticks(write_recurrent):
    meta = make_metadata(recurrence=recurrence_dict(), observation_low=(-1.0,) * 5, observation_high=(1.0,) * 5)
    ctrl = Controller.load(write_recurrent(metadata=meta), safety=SafetyConfig(safe_action="zero"))
    ctrl.act(OBS[0].clip(-1, 1))
    before = ctrl.state
    np.testing.assert_array_equal(ctrl.act(np.full(5, 9.0)), ctrl.neutral_action)  # far outside the range
    assert ctrl.stats["interventions"]["obs_out_of_range"] == 1
    assert all(np.array_equal(a, b) for a, b in zip(ctrl.state, before, strict=True))
