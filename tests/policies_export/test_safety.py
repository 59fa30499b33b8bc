"""The safety layer through the real Controller and onnxruntime: each check, what it sends, what it counts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from policy_fixtures import expected_action, make_metadata

from policies_export import Controller, PolicyFileError, PolicyMetadata
from policies_export.metadata import DEFAULT_OBSERVATION_TOLERANCE
from policies_export.safety import Intervention, SafetyConfig

OBS = np.array([0.5, -1.0, 0.25, 2.0, -0.5])
# Training range of the fixture policy: every value in [-3, 3] except goal[1] in [-1, 1].
OBS_LOW = (-3.0, -3.0, -3.0, -3.0, -1.0)
OBS_HIGH = (3.0, 3.0, 3.0, 3.0, 1.0)
NO_RATE_LIMIT = SafetyConfig(max_action_change=None)


@pytest.fixture
def ranged_policy(write_policy: Callable[..., Path]) -> Path:
    return write_policy(
        "ranged.onnx", metadata=make_metadata(observation_low=OBS_LOW, observation_high=OBS_HIGH)
    )


# ---------------------------------------------------------------- observation ranges in the metadata


def test_observation_ranges_round_trip_and_are_optional() -> None:
    meta = make_metadata(observation_low=list(OBS_LOW), observation_high=list(OBS_HIGH))
    assert PolicyMetadata.from_json(meta.to_json()) == meta
    assert meta.observation_low == OBS_LOW
    older = make_metadata()  # a file written before ranges existed
    assert "observation_low" not in json.loads(older.to_json())
    assert PolicyMetadata.from_json(older.to_json()).observation_low is None


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (OBS_LOW, None, "only one of 'observation_low' / 'observation_high'"),
        (OBS_LOW[:4], OBS_HIGH[:4], r"'observation_low' has 4 values, the observation layout has 5"),
        (
            (4.0, *OBS_LOW[1:]),
            OBS_HIGH,
            r"observation range 0 is \[4.0, 3.0\]; it must be finite with low <= high",
        ),
        (OBS_LOW, (*OBS_HIGH[:4], "x"), r"'observation_high\[4\]' must be a number"),
    ],
)
def test_bad_observation_ranges_are_named(low: object, high: object, expected: str) -> None:
    doc = json.loads(make_metadata().to_json())
    doc.update(observation_low=low, observation_high=high)
    with pytest.raises(PolicyFileError, match=expected):
        PolicyMetadata.from_json(json.dumps(doc), source="p.onnx")


# ---------------------------------------------------------------- observation side


def test_out_of_range_observation_sends_the_safe_action_and_names_the_value(ranged_policy: Path) -> None:
    ctrl = Controller.load(ranged_policy, safety=NO_RATE_LIMIT)
    previous = ctrl.act(OBS)
    obs = OBS.copy()
    obs[4] = -1.5  # goal[1] below its training range [-1, 1]
    np.testing.assert_array_equal(ctrl.act(obs), previous)  # hold
    [(kind, detail)] = ctrl.safety.events
    assert kind is Intervention.OBS_OUT_OF_RANGE
    assert "goal[1]=-1.5 outside [-1, 1]" in detail
    assert ctrl.stats["interventions"]["obs_out_of_range"] == 1 and ctrl.stats["fallbacks"] == 1


def test_nan_is_told_apart_from_out_of_range(ranged_policy: Path) -> None:
    ctrl = Controller.load(ranged_policy)
    ctrl.act([0.0, np.nan, 0.0, 0.0, 0.0])
    [(kind, detail)] = ctrl.safety.events
    assert kind is Intervention.NONFINITE_OBS and "joint_pos[1]=nan" in detail


def test_range_check_can_be_turned_off_and_is_off_for_files_without_ranges(
    ranged_policy: Path, policy_path: Path
) -> None:
    far = np.array([0.0, 0.0, 0.0, 0.0, 2.5])
    off = Controller.load(ranged_policy, safety=SafetyConfig(check_obs_range=False, max_action_change=None))
    np.testing.assert_allclose(off.act(far), expected_action(far), atol=1e-6)
    older = Controller.load(policy_path, safety=NO_RATE_LIMIT)
    assert not older.safety.has_obs_range
    np.testing.assert_allclose(older.act(far), expected_action(far), atol=1e-6)
    assert off.stats["fallbacks"] == older.stats["fallbacks"] == 0


def test_the_range_is_widened_by_the_tolerance_and_near_misses_are_counted_not_fallen_back_on(
    write_policy: Callable[..., Path],
) -> None:
    """Ranges [-3, 3] (centre 0) and, for goal[1], [9.9, 10.1] (centre 10); default tolerance 0.05, so by hand
    the accepted ranges are [-3.05, 3.05] and [9.9 - 0.5, 10.1 + 0.5] = [9.4, 10.6]."""
    meta = make_metadata(observation_low=(*OBS_LOW[:4], 9.9), observation_high=(*OBS_HIGH[:4], 10.1))
    ctrl = Controller.load(write_policy(metadata=meta), safety=SafetyConfig(safe_action="zero"))
    assert ctrl.safety.obs_tolerance == DEFAULT_OBSERVATION_TOLERANCE == 0.05
    inside = np.array([0.5, -1.0, 0.25, 2.0, 10.0])
    for value, index, near in [(3.04, 0, True), (10.55, 4, True), (9.45, 4, True), (3.06, 0, False), (10.65, 4, False)]:
        obs = inside.copy()
        obs[index] = value
        action = ctrl.act(obs)
        [(kind, detail)] = ctrl.safety.events
        if near:  # the policy's own action, and a notice naming the value
            assert kind is Intervention.OBS_NEAR_MISS and "within the tolerance" in detail
            np.testing.assert_allclose(action, expected_action(obs), atol=1e-6)
        else:
            assert kind is Intervention.OBS_OUT_OF_RANGE and "(tolerance 0.05 x max(1, |centre|))" in detail
            np.testing.assert_array_equal(action, [0.0, 0.0])
    stats = ctrl.stats
    assert stats["interventions"]["obs_near_miss"] == 3 and stats["interventions"]["obs_out_of_range"] == 2
    assert stats["fallbacks"] == 2
    batch = ctrl.act_batch(np.stack([inside, [3.04, 0, 0, 0, 10], [3.06, 0, 0, 0, 10]]))
    np.testing.assert_array_equal(batch[2], [0.0, 0.0])
    assert ctrl.stats["interventions"]["obs_near_miss"] == 4 and ctrl.stats["interventions"]["obs_out_of_range"] == 3


def test_the_tolerance_comes_from_the_file_or_the_config(write_policy: Callable[..., Path]) -> None:
    meta = make_metadata(observation_low=OBS_LOW, observation_high=OBS_HIGH, observation_tolerance=0.5)
    path = write_policy(metadata=meta)
    obs = np.array([3.4, 0.0, 0.0, 0.0, 0.0])  # 0.4 beyond [-3, 3]
    from_file = Controller.load(path, safety=NO_RATE_LIMIT)
    assert from_file.safety.obs_tolerance == 0.5 and from_file.metadata.observation_tolerance == 0.5
    from_file.act(obs)
    assert from_file.stats["interventions"]["obs_near_miss"] == 1 and from_file.stats["fallbacks"] == 0
    strict = Controller.load(path, safety=SafetyConfig(obs_range_tolerance=0.0))  # the training range only
    strict.act([3.001, 0.0, 0.0, 0.0, 0.0])
    assert strict.stats["interventions"]["obs_out_of_range"] == 1
    with pytest.raises(PolicyFileError, match="observation_tolerance must be a finite number >= 0"):
        make_metadata(observation_low=OBS_LOW, observation_high=OBS_HIGH, observation_tolerance=-0.1)


def test_act_batch_applies_the_range_check_per_row(ranged_policy: Path) -> None:
    ctrl = Controller.load(ranged_policy)
    actions = ctrl.act_batch(np.stack([OBS, [0, 0, 0, 0, 9.0]]))
    np.testing.assert_allclose(actions[0], expected_action(OBS), atol=1e-6)
    np.testing.assert_array_equal(actions[1], [0.0, 0.0])
    assert ctrl.stats["interventions"]["obs_out_of_range"] == 1


def test_stale_timestamp_sends_the_safe_action_after_max_stale_ticks(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="zero", max_stale_ticks=1))
    ctrl.act(OBS, stamp=1.0)
    ctrl.act(OBS, stamp=1.0)  # one repeat tolerated
    assert ctrl.stats["fallbacks"] == 0
    np.testing.assert_array_equal(ctrl.act(OBS, stamp=1.0), [0.0, 0.0])
    [(kind, detail)] = ctrl.safety.events
    assert kind is Intervention.STALE_OBS and "has not advanced for 2 ticks" in detail
    np.testing.assert_allclose(ctrl.act(OBS, stamp=1.04), expected_action(OBS), atol=1e-6)  # fresh again
    assert ctrl.stats["interventions"]["stale_obs"] == 1


def test_a_timestamp_that_goes_back_is_named_and_refused_at_once(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="zero", max_stale_ticks=1))
    ctrl.act(OBS, stamp=1.0)
    np.testing.assert_array_equal(ctrl.act(OBS, stamp=0.96), [0.0, 0.0])  # no tolerance, unlike a repeat
    [(kind, detail)] = ctrl.safety.events
    assert kind is Intervention.STALE_OBS and "went back from 1.000000 s to 0.960000 s" in detail
    np.testing.assert_allclose(ctrl.act(OBS, stamp=1.04), expected_action(OBS), atol=1e-6)


def test_slow_read_sends_the_safe_action(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    assert ctrl.safety.max_read_s == pytest.approx(1 / 25)  # default: one control period of the file
    ctrl.act(OBS, read_s=0.01)
    assert ctrl.stats["fallbacks"] == 0
    ctrl.act(OBS, read_s=0.2)
    [(kind, detail)] = ctrl.safety.events
    assert kind is Intervention.SLOW_READ and "took 200.0 ms > 40.0 ms" in detail


def test_estop_hook_latches_the_neutral_action_until_released(policy_path: Path) -> None:
    pressed = [False]
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="hold"), estop=lambda: pressed[0])
    assert ctrl.act(OBS).any()
    pressed[0] = True
    np.testing.assert_array_equal(ctrl.act(OBS), [0.0, 0.0])  # neutral even in "hold" mode
    pressed[0] = False
    np.testing.assert_array_equal(ctrl.act(OBS), [0.0, 0.0])  # latched
    ctrl.reset()
    np.testing.assert_array_equal(ctrl.act(OBS), [0.0, 0.0])  # an episode reset does not release it
    ctrl.safety.release_estop()
    np.testing.assert_allclose(ctrl.act(OBS), expected_action(OBS), atol=1e-6)
    assert ctrl.stats["interventions"]["estop"] == 3


def test_estop_hook_that_raises_counts_as_pressed(policy_path: Path) -> None:
    def broken_button() -> bool:
        raise OSError("GPIO 17 not readable")

    ctrl = Controller.load(policy_path, estop=broken_button)
    np.testing.assert_array_equal(ctrl.act(OBS), [0.0, 0.0])
    assert ctrl.stats["interventions"]["estop"] == 1


# ---------------------------------------------------------------- action side


def test_rate_limit_moves_at_most_max_change_per_tick_and_counts(write_policy: Callable[..., Path]) -> None:
    """Bounds [-1, 1] x [-2, 2] and max_action_change 0.2: at most 0.4 and 0.8 per tick."""
    ctrl = Controller.load(write_policy(clip=False), safety=SafetyConfig(max_action_change=0.2))
    far = np.array([100.0, 0.0, 0.0, 0.0, 0.0])  # model says [10.05, -40.1] -> clipped to [1, -2]
    steps = [ctrl.act(far) for _ in range(4)]
    np.testing.assert_allclose(steps, [[0.4, -0.8], [0.8, -1.6], [1.0, -2.0], [1.0, -2.0]], rtol=1e-6)
    counts = ctrl.stats["interventions"]
    assert counts["rate_limited"] == 2 and counts["action_clipped"] == 4
    ctrl.reset()  # back to neutral: the limit applies from there again
    np.testing.assert_allclose(ctrl.act(far), [0.4, -0.8], rtol=1e-6)


def test_safe_action_is_not_rate_limited(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="zero", max_action_change=0.01))
    ctrl.act(OBS)
    ctrl.act(OBS)
    np.testing.assert_array_equal(ctrl.act([np.nan] * 5), [0.0, 0.0])


def test_no_input_gets_an_action_outside_the_bounds(write_policy: Callable[..., Path]) -> None:
    """Random, huge, NaN and inf observations through a graph without its clip: every action within bounds."""
    path = write_policy(
        clip=False, metadata=make_metadata(observation_low=OBS_LOW, observation_high=OBS_HIGH)
    )
    ctrl = Controller.load(path)
    rng = np.random.default_rng(0)
    specials = np.array([np.nan, np.inf, -np.inf, 1e39, -1e39, 1e6])
    for _ in range(500):
        obs = rng.normal(scale=rng.choice([0.1, 3.0, 1000.0]), size=5)
        if rng.random() < 0.2:
            obs[rng.integers(5)] = rng.choice(specials)
        action = ctrl.act(obs, stamp=float(rng.integers(3)))
        assert action.dtype == np.float32 and np.isfinite(action).all()
        assert (action >= ctrl.action_low).all() and (action <= ctrl.action_high).all()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_action_change": 0.0}, "max_action_change must be a positive fraction"),
        ({"max_stale_ticks": -1}, "max_stale_ticks must be >= 0"),
        ({"max_read_s": 0.0}, "max_read_s must be > 0 seconds"),
        ({"obs_range_tolerance": float("nan")}, "obs_range_tolerance must be a finite number >= 0"),
    ],
)
def test_safety_config_checks_its_values(kwargs: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        SafetyConfig(**kwargs)
