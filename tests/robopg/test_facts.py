"""TaskFacts: read from the task, stored in checkpoints in the dict format checkpoints have always had, read
back by resume and export, also from a checkpoint written before the asymmetric critic existed."""

import json

import pytest

from policies_export import Controller
from robopg.checkpoint import load_checkpoint, save_checkpoint
from robopg.config import TrainConfig
from robopg.export import export_policy
from robopg.facts import TaskFacts

# The "task" entry of every checkpoint robopg has written: these keys, JSON types ("privileged" since sim2real).
STORED_KEYS = {"task", "privileged", "layout", "action_low", "action_high", "control_dt", "success_key"}


def test_facts_of_fetch_reach_and_their_dict_round_trip(tiny_config):
    facts = TaskFacts.for_run(tiny_config)
    assert facts.layout == (("observation", 10), ("achieved_goal", 3), ("desired_goal", 3))
    assert (facts.obs_dim, facts.act_dim) == (16, 4)
    assert facts.control_rate_hz == pytest.approx(25.0)  # 20 substeps of 2 ms
    assert facts.success_key == "is_success" and facts.privileged is None
    stored = json.loads(json.dumps(facts.to_dict()))
    assert set(stored) == STORED_KEYS and stored["layout"][0] == ["observation", 10]
    assert TaskFacts.from_dict(stored) == facts


def test_asymmetric_critic_facts_name_the_privileged_inputs(tiny_config):
    cfg = TrainConfig.from_dict({**tiny_config.to_dict(), "policy": {"asymmetric_critic": True}})
    facts = TaskFacts.for_run(cfg)
    assert facts.privileged and "object_mass" not in facts.privileged  # FetchReach has no object
    assert TaskFacts.from_dict(json.loads(json.dumps(facts.to_dict()))).privileged == facts.privileged


def test_damaged_facts_name_what_is_missing():
    with pytest.raises(ValueError, match=r"run.pt: the task facts lack \['layout', 'control_dt'\].*Fix:"):
        TaskFacts.from_dict({"task": "FetchReach-v4", "action_low": [], "action_high": [], "success_key": None},
                            source="run.pt")


def test_a_checkpoint_from_before_the_change_still_exports(tiny_run, tmp_path):
    state = load_checkpoint(tiny_run / "final.pt")
    assert set(state["task"]) == STORED_KEYS and isinstance(state["task"]["layout"], list)
    # A checkpoint written before the asymmetric critic existed has no "privileged" entry.
    old = {key: value for key, value in state["task"].items() if key != "privileged"}
    save_checkpoint(tmp_path / "old.pt", {**state, "task": old})
    report = export_policy(tmp_path / "old.pt", tmp_path / "old.onnx")
    assert report.parity_max_abs_diff <= 1e-5
    metadata = Controller.load(report.path).metadata
    assert metadata.observation_layout == (("observation", 10), ("achieved_goal", 3), ("desired_goal", 3))
    assert metadata.control_rate_hz == pytest.approx(25.0)
