"""Controller: loading real .onnx files through onnxruntime, acting, and the safety layer."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from policy_fixtures import ACTION_HIGH, ACTION_LOW, expected_action, make_metadata

from policies_export import Controller, ObservationError, PolicyFileError
from policies_export.integrity import PLACEHOLDER
from policies_export.safety import Intervention, SafetyConfig

OBS = np.array([0.5, -1.0, 0.25, 2.0, -0.5])  # float64 on purpose: act() accepts any real dtype
NAN_OBS = np.array([0.5, np.nan, 0.25, 2.0, -0.5])
# Drives both action dimensions far past their bounds.
HUGE_OBS = np.array([100.0, 0.0, 0.0, 0.0, 0.0])

# ---------------------------------------------------------------- round trip


def test_load_exposes_metadata_and_bounds(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    assert dataclasses.replace(ctrl.metadata, sha256=None) == make_metadata()
    assert ctrl.digest_verified and ctrl.bounds_verified
    assert ctrl.layout == (("joint_pos", 3), ("goal", 2))
    assert (ctrl.obs_dim, ctrl.act_dim) == (5, 2)
    assert ctrl.action_low.dtype == np.float32 and ctrl.action_high.dtype == np.float32
    np.testing.assert_array_equal(ctrl.action_low, ACTION_LOW)
    np.testing.assert_array_equal(ctrl.action_high, ACTION_HIGH)


def test_act_matches_hand_computed_clipped_affine(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    action = ctrl.act(OBS)
    assert action.shape == (2,) and action.dtype == np.float32
    np.testing.assert_allclose(action, expected_action(OBS), atol=1e-6)
    # By hand: W @ OBS + B = [0.05 + 0.2 + 0.075 + 0 - 0.25 + 0.05, -0.2 - 0.1 + 0 + 0.4 + 0.05 - 0.1]
    np.testing.assert_allclose(action, [0.125, 0.05], atol=1e-6)


def test_list_and_other_dtypes_give_the_same_action(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    reference = ctrl.act(OBS)
    np.testing.assert_array_equal(ctrl.act(OBS.tolist()), reference)
    np.testing.assert_array_equal(ctrl.act(OBS.astype(np.float32)), reference)
    np.testing.assert_array_equal(
        ctrl.act(np.array([1, 0, 0, 0, 0])), expected_action([1, 0, 0, 0, 0]).astype(np.float32)
    )


def test_dict_input_equals_flat_input(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    flat = ctrl.act(OBS)
    as_dict = ctrl.act({"goal": OBS[3:], "joint_pos": OBS[:3].tolist()})  # key order must not matter
    np.testing.assert_array_equal(as_dict, flat)


def test_returned_action_is_the_callers_to_keep(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    first = ctrl.act(OBS)
    first[:] = 99.0  # caller scribbles on it
    np.testing.assert_allclose(ctrl.act(NAN_OBS), expected_action(OBS), atol=1e-6)  # held action unharmed


def test_act_batch_matches_act_row_by_row(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(7, 5))
    actions = ctrl.act_batch(batch)
    assert actions.shape == (7, 2) and actions.dtype == np.float32
    np.testing.assert_allclose(actions, np.stack([expected_action(row) for row in batch]), atol=1e-6)
    assert ctrl.act_batch(np.empty((0, 5))).shape == (0, 2)


# ---------------------------------------------------------------- unusable files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match=r"nope\.onnx: no such file; check the path"):
        Controller.load(tmp_path / "nope.onnx")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="is not a file"):
        Controller.load(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(PolicyFileError, match=r"empty\.onnx: file is empty; re-export"):
        Controller.load(path)


def _assert_truncated_or_not_onnx(path: Path) -> None:
    with pytest.raises(PolicyFileError) as err:
        Controller.load(path)
    msg = str(err.value)
    assert msg.startswith(str(path))
    assert "truncated or not ONNX" in msg
    assert "robopg export RUN_DIR --out FILE" in msg


def test_truncated_file(policy_path: Path, tmp_path: Path) -> None:
    data = policy_path.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    _assert_truncated_or_not_onnx(truncated)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is a README, not a policy\n")
    _assert_truncated_or_not_onnx(path)


def test_onnx_without_robopg_metadata(write_policy: Callable[..., Path]) -> None:
    path = write_policy(with_metadata=False)
    with pytest.raises(
        PolicyFileError, match=r"has no 'robopg' metadata, so it was not written by robopg export"
    ):
        Controller.load(path)


def test_unknown_format_version(write_policy: Callable[..., Path]) -> None:
    path = write_policy(
        metadata=make_metadata(sha256=PLACEHOLDER).to_json().replace('"format_version": 1', '"format_version": 99')
    )
    with pytest.raises(
        PolicyFileError, match=r"format_version 99 is not supported; .* reads format_version 1\. Upgrade"
    ):
        Controller.load(path)


def test_metadata_missing_a_field(write_policy: Callable[..., Path]) -> None:
    text = make_metadata(sha256=PLACEHOLDER).to_json().replace('"control_rate_hz": 25.0, ', "")
    assert "control_rate_hz" not in text
    path = write_policy(metadata=text)
    with pytest.raises(PolicyFileError, match=rf"^{path}: .*missing field\(s\) 'control_rate_hz'; re-export"):
        Controller.load(path)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"input_name": "observation"},
            r"graph inputs are \['observation'\], .* exactly one input named 'obs'",
        ),
        ({"output_name": "act"}, r"graph outputs are \['act'\], .* an output named 'action'"),
        ({"batch_dim": 1}, "fixed batch dimension 1"),
    ],
)
def test_graph_signature_must_follow_the_contract(
    write_policy: Callable[..., Path], kwargs: dict, expected: str
) -> None:
    with pytest.raises(PolicyFileError, match=expected):
        Controller.load(write_policy(**kwargs))


def test_graph_obs_dim_disagreeing_with_metadata(write_policy: Callable[..., Path]) -> None:
    meta = make_metadata(observation_layout=(("joint_pos", 3), ("goal", 3)))
    with pytest.raises(
        PolicyFileError, match=r"'obs' has shape \['batch', 5\], but the metadata says obs_dim 6"
    ):
        Controller.load(write_policy(metadata=meta))


def test_graph_act_dim_disagreeing_with_metadata(write_policy: Callable[..., Path]) -> None:
    meta = make_metadata(action_low=(-1.0, -1.0, -1.0), action_high=(1.0, 1.0, 1.0))
    with pytest.raises(
        PolicyFileError, match=r"'action' has shape \['batch', 2\], but the metadata says act_dim 3"
    ):
        Controller.load(write_policy(metadata=meta))


def test_bad_safe_action_mode(policy_path: Path) -> None:
    with pytest.raises(ValueError, match=r"safe_action must be one of \('hold', 'zero'\), got 'freeze'"):
        Controller.load(policy_path, safety=SafetyConfig(safe_action="freeze"))  # type: ignore[arg-type]


# ---------------------------------------------------------------- wiring bugs raise


def test_obs_of_wrong_size_names_both_sizes_and_the_layout(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    with pytest.raises(
        ObservationError, match=r"^obs has 4 values, policy expects 5 \(layout: joint_pos=3, goal=2\)$"
    ):
        ctrl.act(np.zeros(4))
    with pytest.raises(
        ObservationError, match=r"obs has shape \(1, 5\); act\(\) takes a flat vector .* act_batch"
    ):
        ctrl.act(np.zeros((1, 5)))
    with pytest.raises(ObservationError, match=r"act_batch obs has shape \(3, 4\), policy expects \(B, 5\)"):
        ctrl.act_batch(np.zeros((3, 4)))
    with pytest.raises(ObservationError, match="dtype <U"):
        ctrl.act(["a"] * 5)
    assert ctrl.stats["ticks"] == 0  # calls that raised produced no action


def test_dict_with_missing_key(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    with pytest.raises(
        ObservationError, match=r"obs dict is missing 'goal'; policy expects keys \['joint_pos', 'goal'\]"
    ):
        ctrl.act({"joint_pos": OBS[:3]})


def test_dict_with_unknown_key(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    with pytest.raises(ObservationError, match=r"obs dict has unknown key\(s\) \['gaol'\]"):
        ctrl.act({"joint_pos": OBS[:3], "goal": OBS[3:], "gaol": OBS[3:]})


def test_dict_with_wrong_field_size(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path)
    with pytest.raises(ObservationError, match=r"obs\['goal'\] has shape \(3,\), policy expects 2 values"):
        ctrl.act({"joint_pos": OBS[:3], "goal": OBS[2:]})


# ---------------------------------------------------------------- runtime faults fall back, never raise


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_obs_with_hold_returns_previous_action(policy_path: Path, bad: float) -> None:
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="hold"))
    previous = ctrl.act(OBS)
    obs = OBS.copy()
    obs[2] = bad
    np.testing.assert_array_equal(ctrl.act(obs), previous)
    np.testing.assert_array_equal(ctrl.act(obs), previous)
    stats = ctrl.stats
    assert stats["interventions"]["nonfinite_obs"] == 2 and stats["fallbacks"] == 2
    assert stats["consecutive_fallbacks"] == 2
    assert stats["ticks"] == 3
    ctrl.act(OBS)
    assert ctrl.stats["consecutive_fallbacks"] == 0


@pytest.mark.parametrize("as_dict", [False, True])
def test_a_value_beyond_float32_is_reported_as_itself_without_a_warning(policy_path: Path, as_dict: bool) -> None:
    """1e39 does not fit float32 (max 3.4e38): it is checked before the cast, so it is named as 1e+39, not inf."""
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="zero"))
    obs = OBS.copy()
    obs[2] = -1e39
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered in cast" RuntimeWarning
        action = ctrl.act({"joint_pos": obs[:3], "goal": obs[3:]} if as_dict else obs)
        batch = ctrl.act_batch(np.stack([OBS, obs]))
    np.testing.assert_array_equal(action, [0.0, 0.0])
    [(kind, detail)] = ctrl.safety.events
    assert kind is Intervention.OBS_OUT_OF_RANGE and "joint_pos[2]=-1e+39" in detail and "float32" in detail
    np.testing.assert_allclose(batch, [expected_action(OBS), [0.0, 0.0]], atol=1e-6)
    assert ctrl.stats["interventions"]["obs_out_of_range"] == 2 and ctrl.stats["interventions"]["nonfinite_obs"] == 0


def test_nonfinite_obs_in_dict_input(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="zero"))
    action = ctrl.act({"joint_pos": [0.0, np.inf, 0.0], "goal": [0.0, 0.0]})
    np.testing.assert_array_equal(action, [0.0, 0.0])
    assert ctrl.stats["interventions"]["nonfinite_obs"] == 1


def test_hold_before_any_action_and_after_reset_returns_neutral(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="hold"))
    np.testing.assert_array_equal(ctrl.act(NAN_OBS), [0.0, 0.0])
    ctrl.act(OBS)
    ctrl.reset()
    np.testing.assert_array_equal(ctrl.act(NAN_OBS), [0.0, 0.0])


def test_zero_mode_returns_zeros(policy_path: Path) -> None:
    ctrl = Controller.load(policy_path, safety=SafetyConfig(safe_action="zero"))
    ctrl.act(OBS)
    action = ctrl.act(NAN_OBS)
    assert action.dtype == np.float32
    np.testing.assert_array_equal(action, [0.0, 0.0])
    assert ctrl.stats["interventions"]["nonfinite_obs"] == 1


def test_neutral_action_is_zero_clipped_into_bounds(write_policy: Callable[..., Path]) -> None:
    """A gripper-style bound [0.5, 1] cannot command zero; the neutral action is its nearest bound."""
    meta = make_metadata(action_low=(-1.0, 0.5), action_high=(1.0, 1.0))
    ctrl = Controller.load(write_policy(metadata=meta, clip=False), safety=SafetyConfig(safe_action="zero"))
    np.testing.assert_array_equal(ctrl.act(NAN_OBS), [0.0, 0.5])


def test_out_of_bounds_model_output_is_clipped_and_counted(write_policy: Callable[..., Path]) -> None:
    ctrl = Controller.load(write_policy(clip=False))  # a graph that forgot its clip
    action = ctrl.act(HUGE_OBS)
    np.testing.assert_array_equal(action, [1.0, -2.0])  # W @ HUGE_OBS + B = [10.05, -40.1]
    ctrl.act(OBS)  # in bounds: not counted
    assert ctrl.stats["interventions"]["action_clipped"] == 1
    assert ctrl.stats["fallbacks"] == 0


def test_nonfinite_model_output_returns_safe_action(write_policy: Callable[..., Path]) -> None:
    # action = clip(Wx + b) * [1, inf]: the second dimension is +-inf or NaN for any input.
    path = write_policy(scale=np.array([1.0, np.inf]))
    ctrl = Controller.load(path, safety=SafetyConfig(safe_action="hold"))
    np.testing.assert_array_equal(ctrl.act(OBS), [0.0, 0.0])
    assert ctrl.stats["interventions"]["nonfinite_action"] == 1 and ctrl.stats["fallbacks"] == 1


def test_act_batch_falls_back_per_row_and_counts(write_policy: Callable[..., Path]) -> None:
    ctrl = Controller.load(write_policy(clip=False))
    batch = np.stack([OBS, NAN_OBS, HUGE_OBS, OBS])
    actions = ctrl.act_batch(batch)
    np.testing.assert_allclose(actions[0], expected_action(OBS), atol=1e-6)
    np.testing.assert_array_equal(actions[1], [0.0, 0.0])
    np.testing.assert_array_equal(actions[2], [1.0, -2.0])
    np.testing.assert_allclose(actions[3], expected_action(OBS), atol=1e-6)
    stats = ctrl.stats
    assert stats["ticks"] == 4
    assert stats["interventions"]["nonfinite_obs"] == 1 and stats["fallbacks"] == 1
    assert stats["interventions"]["action_clipped"] == 1


def test_act_batch_with_nonfinite_model_output(write_policy: Callable[..., Path]) -> None:
    ctrl = Controller.load(write_policy(scale=np.array([1.0, np.inf])))
    actions = ctrl.act_batch(np.stack([OBS, NAN_OBS]))
    np.testing.assert_array_equal(actions, np.zeros((2, 2)))
    interventions = ctrl.stats["interventions"]
    assert (interventions["nonfinite_obs"], interventions["nonfinite_action"]) == (1, 1)


def test_averaged_steps_round_trips_and_bad_values_name_the_field():
    from policies_export import PolicyMetadata

    meta = make_metadata(averaged_steps=[4_833_280, 4_915_200, 5_001_216])
    assert meta.averaged_steps == (4_833_280, 4_915_200, 5_001_216)
    assert PolicyMetadata.from_json(meta.to_json()) == meta
    assert "weights           the mean of 3 checkpoints, steps 4833280..5001216" in meta.describe()
    assert "averaged_steps" not in make_metadata().to_json()  # one checkpoint's file: the key is not written
    for bad in ([5_001_216], "5001216", [1.5, 2]):
        with pytest.raises(PolicyFileError, match="averaged_steps"):
            make_metadata(averaged_steps=bad)
