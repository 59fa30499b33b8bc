"""scripts/manipulation_failures.py: the failure kinds by hand, and the recorded distances of a real push file
against the controller's own evaluation of the same episodes."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

sys.path.insert(0, str(ROOT / "tests" / "policies_export"))

import manipulation_failures as failures  # noqa: E402
from policy_fixtures import build_model, make_metadata  # noqa: E402

from policies_export import integrity  # noqa: E402
from robopg.evaluate import evaluate_policy  # noqa: E402

LAYOUT = (("observation", 25), ("achieved_goal", 3), ("desired_goal", 3))


def test_classify_by_hand():
    assert failures.classify(True, 0.01, 0.02, 0.05) is None
    assert failures.classify(False, 0.049, 0.30, 0.05) == "lost"  # was inside, left again
    assert failures.classify(False, 0.06, 0.099, 0.05) == "short"  # never inside, ended within 2 x threshold
    assert failures.classify(False, 0.06, 0.10, 0.05) == "astray"
    assert failures.classify(False, 0.20, 0.70, 0.05, moved=0.5, drop=0.0) == "astray"
    assert failures.classify(False, 0.20, 0.70, 0.05, moved=0.5, drop=0.3) == "fell"  # off the table
    assert failures.classify(False, 0.20, 0.20, 0.05, moved=0.005, drop=0.0) == "unmoved"


@pytest.fixture
def push_policy(tmp_path) -> Path:
    """A hand-built linear FetchPush file (no training): the gripper driven into the object (10 x object_rel_pos,
    observation[6:9]), so the object is pushed about and its distances move."""
    weight = np.zeros((4, 31), np.float32)
    weight[0:3, 6:9] = 10 * np.eye(3)
    meta = make_metadata(task="FetchPush-v4", observation_layout=LAYOUT, action_low=(-1.0,) * 4,
                         action_high=(1.0,) * 4, randomization={})
    text = dataclasses.replace(meta, sha256=integrity.PLACEHOLDER).to_json()
    data, _ = integrity.stamp(build_model(weight=weight, bias=np.zeros(4, np.float32), clip_low=meta.action_low,
                                          clip_high=meta.action_high, metadata_json=text).SerializeToString())
    path = tmp_path / "push.onnx"
    path.write_bytes(data)
    return path


def test_records_the_episodes_evaluate_scores(push_policy, tmp_path):
    rows, inside = failures.record(push_policy, "nominal", "none", episodes=2, seed=10000)
    direct = evaluate_policy(push_policy, profile="nominal", episodes=2, seed=10000)
    assert [r.index for r in rows] == [0, 1]
    assert np.mean([r.success for r in rows]) == direct.success_rate
    for r in rows:
        assert r.closest <= min(r.start, r.final) + 1e-12 and 0.0 < r.start < 0.5
        assert r.kind == failures.classify(r.success, r.closest, r.final, 0.05, r.moved, r.drop)
        assert r.moved >= abs(r.final - r.start) - 1e-9  # the goal is fixed: |final - start| <= the object's path
    assert max(abs(r.final - r.start) for r in rows) > 0.01  # the object was pushed: the distances did move
    assert np.all(inside >= 0)
    failures.main([str(push_policy), "--profile", "nominal", "--episodes", "2", "--json", str(tmp_path / "f.json")])
    assert '"failures"' in (tmp_path / "f.json").read_text()
    with pytest.raises(SystemExit):
        failures.main([str(tmp_path / "missing.onnx")])


def test_attribution_ranks_the_value_that_separates_failures_by_hand():
    def episode(i, success, latency, mass):
        return failures.Episode(i, success, 0.2, 0.1, 0.2, 0.1, 0.0, None if success else "astray",
                                {"action_latency": latency, "object_mass": mass, "gravity": 9.81})
    rows = [episode(0, True, 0.0, 1.0), episode(1, True, 1.0, 3.0), episode(2, False, 3.0, 2.0),
            episode(3, False, 3.0, 2.0)]
    ranked = failures.attribution(rows)
    assert [name for name, *_ in ranked] == ["action_latency", "object_mass"]  # gravity never varied: left out
    name, bad, good, gap = ranked[0]
    # latency: failed mean 3, succeeded 0.5, population std of (0, 1, 3, 3) = sqrt(1.6875)
    assert (bad, good) == (3.0, 0.5) and gap == pytest.approx(2.5 / np.sqrt(1.6875))
    assert ranked[1][3] == pytest.approx(0.0)  # mass: 2 against 2
    assert failures.attribution(rows[:2]) == []  # no failure: nothing to compare


def test_each_episode_carries_the_values_its_reset_sampled(push_policy):
    from robopg.sim_robot import SimRobot

    rows, _ = failures.record(push_policy, None, "sim2real", episodes=2, seed=10000)
    for row in rows:  # episode i starts from reset(seed=10000 + i), as robopg evaluate's
        robot = SimRobot("FetchPush-v4", seed=10000 + row.index, randomization="sim2real")
        try:
            expected = {k: float(v) for k, v in robot.last_info["randomization"].items()}
        finally:
            robot.close()
        assert row.randomization == expected and "action_latency" in expected
    assert rows[0].randomization != rows[1].randomization
