"""Recurrent policies end to end: a tiny LSTM run exported with its state as inputs and outputs, the parity gate on
recorded sequences across episode boundaries (and that it catches a miswired state), inspect, evaluate, and a
recorded training rollout replayed through the robot's Controller giving the training actions."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from policies_export import Controller
from policies_export.metadata import Recurrence
from policies_export.safety import SafetyConfig
from robopg.cli import main
from robopg.config import TrainConfig
from robopg.environment import make_training_env
from robopg.export import (
    add_probe_input,
    export_policy,
    load_trained_policy,
    policy_metadata,
    write_policy_file,
)
from robopg.facts import TaskFacts
from robopg.modules import build_policy
from robopg.recurrent_export import (
    SEQUENCE_BOUNDARIES,
    SEQUENCE_STEPS,
    record_sequences,
    recurrent_onnx_bytes,
    sequence_max_abs_diff,
)
from robopg.runners import Trainer

# The tiny run of conftest.py with an LSTM actor (`--recurrent lstm --rnn-hidden-size 16`); GRU + action history
# for the closed-loop check.
LSTM_RUN = TrainConfig.from_dict({
    "env": {"task": "FetchReachDense-v4", "num_envs": 4, "randomization": "default"},
    "policy": {"hidden_sizes": (32, 32), "recurrent": "lstm", "rnn_hidden_size": 16},
    "ppo": {"rollout_steps": 16, "epochs": 2, "minibatches": 2},
    "run": {"total_steps": 512, "seed": 3, "checkpoint_every": 0},
})
GRU_HISTORY_RUN = LSTM_RUN.replace({"env": {"action_history": 2},
                                    "policy": {"recurrent": "gru", "rnn_layers": 2, "asymmetric_critic": True}})
PARITY_ONLY = SafetyConfig(check_obs_range=False)  # a 512-step normaliser's range must not swap in safe actions


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lstm_run")
    Trainer(LSTM_RUN, run_dir, progress=False).train()
    return run_dir, export_policy(run_dir, run_dir / "policy.onnx")


def test_the_file_takes_and_returns_the_state_and_says_how_to_reset_it(lstm_run):
    _, report = lstm_run
    meta = report.metadata
    assert meta.recurrence == Recurrence.standard("lstm", 1, 16) and meta.recurrence.reset == "zeros at an episode's start"
    ctrl = Controller.load(report.path)
    assert ctrl.digest_verified and ctrl.bounds_verified
    model = onnx.load(report.path)
    assert [i.name for i in model.graph.input] == ["obs", "h_in", "c_in", "action_probe"]
    assert [o.name for o in model.graph.output] == ["action", "h_out", "c_out"]
    assert report.parity_max_abs_diff <= 1e-5
    assert report.parity_on.startswith(f"a recorded sequence of {SEQUENCE_STEPS} steps x 4 envs")


def test_the_parity_gate_runs_across_episode_boundaries_and_catches_a_miswired_state(lstm_run, tmp_path):
    """The gate's sequences hold >= 500 steps and >= 3 episode ends per env; on them the file matches torch within
    1e-5, and a graph whose h_out and c_out are swapped (correct at each episode's first step, where the state is
    zeros) fails it."""
    run_dir, report = lstm_run
    policy, state = load_trained_policy(run_dir)
    recorded = record_sequences(policy, LSTM_RUN.env, seed=11)
    assert recorded.steps >= 500 and recorded.boundaries >= SEQUENCE_BOUNDARIES >= 3
    np.testing.assert_array_equal(np.flatnonzero(recorded.starts[:, 0]), np.arange(0, recorded.steps, 50))
    assert sequence_max_abs_diff(report.path, policy, recorded) <= 1e-5

    model = onnx.load_from_string(recurrent_onnx_bytes(policy, 17))
    swap = {"h_out": "c_out", "c_out": "h_out"}
    for output in model.graph.output:
        output.name = swap.get(output.name, output.name)
    for node in model.graph.node:
        node.output[:] = [swap.get(name, name) for name in node.output]
    add_probe_input(model)
    write_policy_file(model, tmp_path / "swapped.onnx", policy_metadata(policy, state, 0.05))
    assert sequence_max_abs_diff(tmp_path / "swapped.onnx", policy, recorded) > 1e-3


def test_a_recorded_training_rollout_replayed_through_the_controller_gives_the_training_actions(lstm_run, one_rollout):
    """The collector's rollout (stochastic actions, the state zeroed at each episode start), observation by
    observation through Controller.act with reset() at the episode starts: the Controller's actions are the
    training policy's means at every step, within 1e-5, across two episode boundaries."""
    run_dir, report = lstm_run
    policy, state = load_trained_policy(run_dir)
    cfg = TrainConfig.from_dict(state["config"])
    facts = TaskFacts.from_dict(state["task"])
    storage = one_rollout(policy, cfg.env, 120, 2, seed=77, sample_seed=0, success_key=facts.success_key)
    starts = storage.sequences().starts
    training_actions = policy.to_env_action(storage.means).numpy()
    for j in range(2):
        ctrl = Controller.load(report.path, safety=PARITY_ONLY)
        for t in range(120):
            if starts[t, j]:
                ctrl.reset()  # what run_loop does between episodes
            action = ctrl.act(storage.obs[t, j].numpy())
            assert np.abs(action - training_actions[t, j]).max() <= 1e-5, (t, j)
        assert int(starts[:, j].sum()) == 3 and ctrl.stats["fallbacks"] == 0


def test_history_and_recurrence_combine_in_the_closed_loop(tmp_path):
    """GRU (2 layers) + action history, asymmetric critic: the Controller, fed only raw observations, stacks the
    input training stacked and carries the state the torch policy carries, across an episode boundary; the env is
    stepped with the Controller's actions, so both action histories hold the same numbers."""
    Trainer(GRU_HISTORY_RUN, tmp_path, progress=False).train()
    report = export_policy(tmp_path, tmp_path / "policy.onnx")
    assert report.metadata.recurrence.kind == "gru" and report.metadata.input_dim == 16 + 2 * 4
    policy, _ = load_trained_policy(tmp_path)
    controller = Controller.load(report.path, safety=PARITY_ONLY)
    env = make_training_env(GRU_HISTORY_RUN.env, 1, seed=2024)
    state = policy.actor.memory.zero_state(1)
    obs, _ = env.reset(seed=2024)
    try:
        for _tick in range(60):  # FetchReach episodes are 50 steps: one boundary, then 10 more ticks
            action = controller.act(obs[0, :16])
            np.testing.assert_array_equal(controller.last_input, obs[0])
            expected, state = policy.deterministic_step(torch.from_numpy(obs), state)
            assert np.abs(action - expected.numpy()[0]).max() <= 1e-5
            obs, _, terminated, truncated, _ = env.step(action[None])
            if terminated[0] or truncated[0]:
                controller.reset()
                state = policy.actor.memory.zero_state(1)
    finally:
        env.close()


def test_inspect_and_evaluate_a_recurrent_file(lstm_run, capsys):
    _, report = lstm_run
    assert main(["inspect", str(report.path)]) == 0
    assert ("memory            lstm, 1 layer x 16: state inputs h_in, c_in [1, batch, 16] -> outputs h_out, c_out; "
            "zeros at an episode's start") in capsys.readouterr().out
    assert main(["inspect", str(report.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recurrence"]["shape"] == [1, "batch", 16]
    assert main(["evaluate", str(report.path), "--episodes", "2", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{"):])
    assert result["episodes"] == 2 and result["mean_return"] < 0


def test_a_recurrent_run_resumes_with_its_memory(lstm_run, tmp_path):
    """--resume rebuilds the recurrent policy from config.json and loads its LSTM weights; training goes on."""
    run_dir, _ = lstm_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    trained = load_trained_policy(copy)[0].actor.memory.rnn.weight_hh_l0.detach().clone()
    resumed = Trainer.resume(copy, {"run": {"total_steps": 768}}, progress=False)
    assert torch.equal(resumed.policy.actor.memory.rnn.weight_hh_l0, trained)
    resumed.train()
    assert resumed.global_step >= 768
    assert not torch.equal(resumed.policy.actor.memory.rnn.weight_hh_l0, trained)


def test_recording_runs_on_until_every_sequence_has_its_boundaries():
    """Pendulum-v1's episodes are 200 steps: asked for 2 boundaries, the recording stops right after the step that
    begins the third episode (steps 0..400), however few steps were asked for."""
    cfg = TrainConfig.from_dict({"env": {"task": "Pendulum-v1", "num_envs": 2, "randomization": "none"},
                                 "policy": {"hidden_sizes": (8,), "recurrent": "gru", "rnn_hidden_size": 4},
                                 "ppo": {"minibatches": 2}})
    policy = build_policy(cfg, TaskFacts.for_run(cfg), torch.Generator().manual_seed(0))
    recorded = record_sequences(policy, cfg.env, seed=0, num_envs=2, min_steps=10, min_boundaries=2)
    assert recorded.steps == 401 and recorded.boundaries == 2
    np.testing.assert_array_equal(np.flatnonzero(recorded.starts[:, 1]), [0, 200, 400])

