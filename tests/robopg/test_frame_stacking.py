"""Observation/action history end to end: config and flags, a tiny run trained with history, exported, and
stacked by the robot's Controller exactly as training stacked it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from envs.history import HistoryStack
from policies_export import Controller
from policies_export.metadata import History
from policies_export.safety import SafetyConfig
from robopg.cli import build_parser, main
from robopg.config import EnvConfig, TrainConfig
from robopg.environment import make_training_env
from robopg.export import export_policy, load_trained_policy
from robopg.runners import Trainer

K, M = 3, 2
OBS_DIM, ACT_DIM = 16, 4  # FetchReachDense-v4: observation=10, achieved_goal=3, desired_goal=3; 4 actions


# The tiny run of conftest.py, with history (`robopg train ... --obs-history 3 --action-history 2`).
HISTORY_RUN = TrainConfig.from_dict({
    "env": {"task": "FetchReachDense-v4", "num_envs": 4, "randomization": "default",
            "obs_history": K, "action_history": M},
    "policy": {"hidden_sizes": (32, 32)},
    "ppo": {"rollout_steps": 16, "epochs": 2, "minibatches": 2},
    "run": {"total_steps": 512, "seed": 3},
})


@pytest.fixture(scope="module")
def history_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("history_run")
    Trainer(HISTORY_RUN, run_dir, progress=False).train()
    report = export_policy(run_dir, run_dir / "policy.onnx")
    return run_dir, report


def test_config_validates_history_lengths_and_names_the_flag():
    with pytest.raises(ValueError, match="obs_history must be >= 1.*--obs-history"):
        EnvConfig(obs_history=0)
    with pytest.raises(ValueError, match="action_history must be >= 0.*--action-history"):
        EnvConfig(action_history=-1)
    args = build_parser().parse_args(["train", "--obs-history", "3", "--action-history", "2"])
    assert (getattr(args, "env.obs_history"), getattr(args, "env.action_history")) == (3, 2)
    env = EnvConfig(task="FetchReachDense-v4", num_envs=2, randomization="none")
    vec = make_training_env(env, 2, seed=0)
    assert not isinstance(vec, HistoryStack)  # K = 1, M = 0: the observations as they are
    vec.close()


def test_policy_input_config_json_and_metadata_carry_the_history(history_run):
    run_dir, report = history_run
    saved = json.loads((run_dir / "config.json").read_text())["env"]
    assert (saved["obs_history"], saved["action_history"]) == (K, M)
    policy, state = load_trained_policy(run_dir)
    assert policy.obs_dim == K * OBS_DIM + M * ACT_DIM
    assert sum(size for _, size in state["task"]["layout"]) == OBS_DIM  # the robot still sends one observation

    meta = Controller.load(report.path).metadata
    assert meta.history == History(observations=K, actions=M) and meta.input_dim == policy.obs_dim
    assert report.parity_max_abs_diff <= 1e-5  # measured on stacked inputs recorded from the training env
    # The range check is on one raw observation: the normaliser's range of the newest stacked frame.
    low, _ = policy.normalizer.unclipped_range()
    assert len(meta.observation_low) == OBS_DIM
    np.testing.assert_allclose(meta.observation_low, low[(K - 1) * OBS_DIM : K * OBS_DIM].numpy())


def test_frame_stacking_in_the_runtime_matches_training_on_a_recorded_episode(history_run):
    """One training env, the deployed policy in the loop, across an episode boundary: at every tick the Controller,
    fed only the raw observation, builds the very input the training env stacked, and its action is the torch
    policy's deterministic action on that input. The env is stepped with the Controller's action (what a robot
    receives), so both action histories hold the same numbers and the inputs can be compared exactly."""
    run_dir, report = history_run
    policy, state = load_trained_policy(run_dir)
    env = make_training_env(TrainConfig.from_dict(state["config"]).env, 1, seed=2024)
    # Parity, not safety, is under test: the range check of a 256-step normaliser must not swap in safe actions.
    controller = Controller.load(report.path, safety=SafetyConfig(check_obs_range=False))
    newest = slice((K - 1) * OBS_DIM, K * OBS_DIM)
    obs, _ = env.reset(seed=2024)
    ticks = episodes = 0
    try:
        while episodes < 1 or ticks < 60:  # FetchReach episodes are 50 steps: one boundary, then 10 more ticks
            action = controller.act(obs[0, newest])
            np.testing.assert_array_equal(controller.last_input, obs[0])
            with torch.no_grad():
                expected = policy.deterministic_action(torch.from_numpy(obs)).numpy()[0]
            assert np.abs(action - expected).max() <= 1e-5
            previous = obs[0]
            obs, _, terminated, truncated, infos = env.step(action[None])
            ticks += 1
            if terminated[0] or truncated[0]:
                # The ended episode's stack for bootstrapping: its history shifted by the final observation.
                final = infos["final_obs"][0]
                np.testing.assert_array_equal(final[: (K - 1) * OBS_DIM], previous[OBS_DIM : K * OBS_DIM])
                np.testing.assert_array_equal(final[-ACT_DIM:], action)
                controller.reset()  # what run_loop does between episodes
                episodes += 1
        assert controller.stats["fallbacks"] == 0
    finally:
        env.close()


def test_inspect_shows_the_history(history_run, capsys):
    _, report = history_run
    assert main(["inspect", str(report.path)]) == 0
    out = capsys.readouterr().out
    assert "observation       16 values: observation=10, achieved_goal=3, desired_goal=3" in out
    assert "history           last 3 observations + last 2 actions = 3 x 16 + 2 x 4 = 56 input values" in out


def test_evaluate_runs_a_history_policy_through_the_cli(history_run, capsys):
    _, report = history_run
    assert main(["evaluate", str(report.path), "--episodes", "2", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{"):])
    assert result["task"] == "FetchReachDense-v4" and result["episodes"] == 2
    assert result["mean_return"] < 0 and 0 <= result["success_rate"] <= 1
