"""Export: one self-describing ONNX file, checked by onnx and run by onnxruntime within 1e-5 of torch."""

import json

import numpy as np
import onnx
import pytest
import torch

from policies_export import Controller
from robopg.checkpoint import CheckpointError
from robopg.config import EnvConfig
from robopg.export import ExportError, export_policy, load_trained_policy, record_observations


def test_export_round_trip_parity_and_metadata(tiny_run, tmp_path):
    out = tmp_path / "policy.onnx"
    report = export_policy(tiny_run, out)
    assert report.num_observations >= 1000
    assert 0.0 <= report.parity_max_abs_diff <= 1e-5

    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    meta = json.loads({p.key: p.value for p in model.metadata_props}["robopg"])
    assert meta["task"] == "FetchReachDense-v4" and meta["algorithm"] == "ppo"
    assert meta["observation_layout"] == [["observation", 10], ["achieved_goal", 3], ["desired_goal", 3]]
    assert meta["action_low"] == [-1.0] * 4 and meta["action_high"] == [1.0] * 4
    assert meta["control_rate_hz"] == pytest.approx(25.0)  # Fetch: 20 substeps of 2 ms
    assert meta["training_steps"] == 256 and meta["seed"] == 3
    assert "object_mass" in meta["randomization"]["parameters"]  # the default spec travels with the policy
    assert meta["parity_max_abs_diff"] == report.parity_max_abs_diff

    # Normaliser and mean head are inside the graph: raw observations in, the torch policy's actions out.
    policy, _ = load_trained_policy(tiny_run)
    obs = record_observations(policy, EnvConfig(task="FetchReachDense-v4", randomization="none"), 64, seed=99)
    with torch.no_grad():
        expected = policy.deterministic_action(torch.from_numpy(obs)).numpy()
    controller = Controller.load(out)
    assert np.abs(controller.act_batch(obs) - expected).max() <= 1e-5
    assert np.abs(controller.act(obs[0]) - expected[0]).max() <= 1e-5
    layout = {"observation": obs[0, :10], "achieved_goal": obs[0, 10:13], "desired_goal": obs[0, 13:]}
    assert np.array_equal(controller.act(layout), controller.act(obs[0]))


def test_export_refuses_when_parity_exceeds_tolerance(tiny_run, tmp_path):
    out = tmp_path / "policy.onnx"
    with pytest.raises(ExportError, match=r"differs from torch by .* no file written"):
        export_policy(tiny_run, out, tolerance=-1.0)  # any measured figure exceeds a negative tolerance
    assert not out.exists()


def test_export_of_a_directory_without_checkpoint_names_the_fix(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint.*robopg train"):
        export_policy(tmp_path, tmp_path / "p.onnx")


def test_export_average_last_exports_the_mean_of_the_last_checkpoints_weights(tiny_run, tmp_path):
    from robopg.checkpoint import load_checkpoint

    out = tmp_path / "averaged.onnx"
    report = export_policy(tiny_run, out, num_observations=64, average_last=2)
    # tiny_run: 4 iterations of 64 steps, a periodic checkpoint every 2: step 128, then final.pt at 256.
    assert report.metadata.averaged_steps == (128, 256) and report.metadata.training_steps == 256
    assert report.parity_max_abs_diff <= 1e-5

    # The expected policy by hand: the final checkpoint's, each trained parameter set to the mean of the two files'.
    older = load_checkpoint(tiny_run / "checkpoints" / "step_0000000128.pt")["policy"]
    policy, state = load_trained_policy(tiny_run)
    newest_alone = Controller.load(export_policy(tiny_run, tmp_path / "newest.onnx", num_observations=64).path)
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            parameter.copy_((state["policy"][name] + older[name]) / 2)
    obs = record_observations(policy, EnvConfig(task="FetchReachDense-v4", randomization="none"), 64, seed=99)
    with torch.no_grad():
        expected = policy.deterministic_action(torch.from_numpy(obs)).numpy()
    averaged = Controller.load(out)
    assert np.abs(averaged.act_batch(obs) - expected).max() <= 1e-5
    assert np.abs(newest_alone.act_batch(obs) - expected).max() > 1e-3  # the average is not the newest's policy
    assert "the mean of 2 checkpoints, steps 128..256" in averaged.metadata.describe()
    # A checkpoint path (what scripts/bench_manipulation.py exports) averages with its own run's checkpoints.
    from_file = export_policy(tiny_run / "final.pt", tmp_path / "from_file.onnx", num_observations=64, average_last=2)
    assert from_file.metadata.averaged_steps == (128, 256)
    assert np.abs(Controller.load(from_file.path).act_batch(obs) - expected).max() <= 1e-5

    with pytest.raises(CheckpointError, match=r"--average-last 3 needs 2 periodic checkpoints before step 256 .* "
                                              r"found 1; pass a smaller --average-last"):
        export_policy(tiny_run, tmp_path / "three.onnx", average_last=3)
    assert not (tmp_path / "three.onnx").exists()
