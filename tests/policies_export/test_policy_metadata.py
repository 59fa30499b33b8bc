"""PolicyMetadata: JSON round trip and the checks that keep a bad document out of the runtime."""

from __future__ import annotations

import json

import pytest
from policy_fixtures import make_metadata

from policies_export import FORMAT_VERSION, PolicyFileError, PolicyMetadata
from policies_export.metadata import History


def _doc(**changes: object) -> dict:
    doc = json.loads(make_metadata().to_json())
    doc.update(changes)
    return doc


def test_round_trip_is_exact() -> None:
    meta = make_metadata()
    again = PolicyMetadata.from_json(meta.to_json())
    assert again == meta
    assert again.observation_layout == (("joint_pos", 3), ("goal", 2))
    assert (again.obs_dim, again.act_dim) == (5, 2)


def test_lists_are_normalised_to_tuples() -> None:
    meta = make_metadata(observation_layout=[["a", 2], ["b", 1]], action_low=[-1, 0], action_high=[1, 1])
    assert meta.observation_layout == (("a", 2), ("b", 1))
    assert meta.action_low == (-1.0, 0.0)
    assert meta.layout_str() == "a=2, b=1"


def test_unknown_keys_are_ignored_for_additive_extensions() -> None:
    assert PolicyMetadata.from_json(json.dumps(_doc(new_field=1))) == make_metadata()


def test_unknown_format_version_says_what_this_runtime_reads_and_how_to_fix() -> None:
    with pytest.raises(PolicyFileError) as err:
        PolicyMetadata.from_json(json.dumps(_doc(format_version=FORMAT_VERSION + 1)), source="arm.onnx")
    msg = str(err.value)
    assert msg.startswith("arm.onnx: ")
    assert f"format_version {FORMAT_VERSION + 1} is not supported" in msg
    assert f"reads format_version {FORMAT_VERSION}" in msg
    assert "Upgrade robopg" in msg and "re-export" in msg


def test_missing_format_version() -> None:
    doc = _doc()
    del doc["format_version"]
    with pytest.raises(PolicyFileError, match="no 'format_version' field"):
        PolicyMetadata.from_json(json.dumps(doc))


@pytest.mark.parametrize("field", ["action_low", "observation_layout", "exported_at", "seed"])
def test_missing_field_is_named(field: str) -> None:
    doc = _doc()
    del doc[field]
    with pytest.raises(PolicyFileError, match=rf"missing field\(s\) '{field}'.*robopg export"):
        PolicyMetadata.from_json(json.dumps(doc), source="p.onnx")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("task", 3, "'task' must be a string"),
        ("seed", "3", "'seed' must be an integer"),
        ("training_steps", True, "'training_steps' must be an integer"),
        ("control_rate_hz", "fast", "'control_rate_hz' must be a number"),
        ("action_low", "low", "'action_low' must be a list of numbers"),
        ("action_high", [1.0, "x"], r"'action_high\[1\]' must be a number"),
        ("randomization", [], "'randomization' must be a JSON object"),
        ("observation_layout", [["joint_pos", 0], ["goal", 2]], "size must be a positive integer"),
        ("observation_layout", [["joint_pos", 2.5]], "size must be a positive integer"),
        ("observation_layout", [["joint_pos", 3, 1]], r"must be a \[name, size\] pair"),
        ("observation_layout", [], "non-empty list"),
        ("observation_layout", [["a", 1], ["a", 2]], "names 'a' twice"),
    ],
)
def test_wrong_field_type_is_named(field: str, value: object, expected: str) -> None:
    with pytest.raises(PolicyFileError, match=expected):
        PolicyMetadata.from_json(json.dumps(_doc(**{field: value})), source="p.onnx")


def test_action_bounds_lengths_must_agree() -> None:
    with pytest.raises(PolicyFileError, match="2 action_low values but 3 action_high values"):
        PolicyMetadata.from_json(json.dumps(_doc(action_high=[1.0, 1.0, 1.0])))


def test_action_low_must_not_exceed_high() -> None:
    with pytest.raises(PolicyFileError, match=r"action_low\[1\] = 3.0 is above action_high\[1\] = 2.0"):
        PolicyMetadata.from_json(json.dumps(_doc(action_low=[-1.0, 3.0])))


def test_nonfinite_values_are_rejected() -> None:
    text = make_metadata().to_json().replace('"control_rate_hz": 25.0', '"control_rate_hz": NaN')
    with pytest.raises(PolicyFileError, match="not valid JSON"):
        PolicyMetadata.from_json(text)
    with pytest.raises(PolicyFileError, match="bounds must be finite"):
        make_metadata(action_high=(float("inf"), 2.0))


@pytest.mark.parametrize(
    ("text", "expected"), [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")]
)
def test_not_a_json_object(text: str, expected: str) -> None:
    with pytest.raises(PolicyFileError, match=expected):
        PolicyMetadata.from_json(text, source="p.onnx")


def test_construction_checks_too() -> None:
    """The exporter builds PolicyMetadata directly; it must not be able to write an inconsistent file."""
    with pytest.raises(PolicyFileError, match="control_rate_hz must be positive"):
        make_metadata(control_rate_hz=0.0)
    with pytest.raises(PolicyFileError, match="parity_max_abs_diff must be a finite number >= 0"):
        make_metadata(parity_max_abs_diff=-1.0)


# ---------------------------------------------------------------- history (optional, added in format 1)


def test_history_round_trips_and_sets_the_input_size() -> None:
    meta = make_metadata(history={"observations": 3, "actions": 2})
    assert meta.history == History(observations=3, actions=2)
    assert (meta.obs_dim, meta.input_dim) == (5, 3 * 5 + 2 * 2)
    assert json.loads(meta.to_json())["history"] == {"observations": 3, "actions": 2}
    assert PolicyMetadata.from_json(meta.to_json()) == meta
    assert "last 3 observations + last 2 actions = 3 x 5 + 2 x 2 = 19 input values" in meta.describe()


def test_a_document_without_history_has_none_and_is_written_as_before() -> None:
    doc = _doc()
    assert "history" not in doc  # a policy without history writes what robopg wrote before history existed
    meta = PolicyMetadata.from_json(json.dumps(doc))
    assert meta.history == History() and not meta.history.stacked and meta.input_dim == meta.obs_dim
    assert "history           none" in meta.describe()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"observations": 0, "actions": 0}, "history.observations must be >= 1"),
        ({"observations": 2, "actions": -1}, "history.actions must be >= 0"),
        ({"observations": 2.0}, "'history.observations' must be an integer"),
        ({"observations": 2, "rewards": 1}, r"unknown key\(s\) \['rewards'\]"),
        (3, "'history' must be a JSON object"),
    ],
)
def test_bad_history_is_named(value: object, expected: str) -> None:
    with pytest.raises(PolicyFileError, match=expected):
        PolicyMetadata.from_json(json.dumps(_doc(history=value)), source="p.onnx")
