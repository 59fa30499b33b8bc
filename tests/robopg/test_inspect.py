"""Observation ranges written at export, and `robopg inspect` printing what a policy file carries."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

import envs
from policies_export import Controller
from robopg.export import export_policy, load_trained_policy


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    return export_policy(tiny_run, tmp_path_factory.mktemp("inspect") / "reach.onnx")


def robopg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robopg.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_export_writes_the_normalisers_unclipped_range(exported, tiny_run):
    policy, _ = load_trained_policy(tiny_run)
    norm = policy.normalizer
    std = np.sqrt(norm.var.double().numpy() + norm.eps)
    meta = exported.metadata
    np.testing.assert_allclose(meta.observation_low, norm.mean.double().numpy() - norm.clip * std)
    np.testing.assert_allclose(meta.observation_high, norm.mean.double().numpy() + norm.clip * std)
    assert Controller.load(exported.path).safety.has_obs_range


def test_inspect_prints_layout_bounds_rate_provenance_parity_and_ranges(exported):
    done = robopg("inspect", str(exported.path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "FetchReachDense-v4 (ppo, 256 training steps, seed 3)" in out
    assert "25 Hz (one action every 40 ms)" in out
    assert "16 values: observation=10, achieved_goal=3, desired_goal=3" in out
    assert "4 values, bounds [-1, 1], [-1, 1], [-1, 1], [-1, 1]" in out
    assert f"{exported.parity_max_abs_diff:.2e}" in out
    low, high = exported.metadata.observation_low[13], exported.metadata.observation_high[13]
    assert f"desired_goal    [{low:.4g}, {high:.4g}]" in out
    assert "tolerance       0.05 x max(1, |centre|) beyond each range before the safety layer rejects a value " \
        "(set at export)" in out


def test_inspect_lists_the_randomisation_parameters_active_for_the_task_as_info_does(exported):
    """The default spec has 20 parameters; 7 (object_mass, ..., gripper_gain) have no target on FetchReach."""
    env = envs.make_env("FetchReachDense-v4", seed=0, randomization="default")
    try:
        _, info = env.reset(seed=0)
    finally:
        env.close()
    reported = list(info["randomization"])
    assert exported.metadata.randomization_active == tuple(reported) and "object_mass" not in reported
    done = robopg("inspect", str(exported.path))
    [line] = [line for line in done.stdout.splitlines() if line.startswith("randomisation")]
    inactive = len(exported.metadata.randomization["parameters"]) - len(reported)
    assert line == f"randomisation     {', '.join(reported)} ({inactive} more in the spec have no target on this task)"
    assert "object_mass" not in done.stdout and inactive == 7


def test_inspect_json_is_the_metadata_document(exported):
    done = robopg("inspect", str(exported.path), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(exported.metadata.to_json())


def test_inspect_says_when_a_file_has_no_ranges(exported, tmp_path):
    model = onnx.load(exported.path)
    doc = json.loads(model.metadata_props[0].value)
    del doc["observation_low"], doc["observation_high"]  # what robopg wrote before ranges existed
    del doc["sha256"]  # ... and before digests: an edited file with its digest would be refused
    model.metadata_props[0].value = json.dumps(doc)
    older = tmp_path / "older.onnx"
    onnx.save(model, older)
    done = robopg("inspect", str(older))
    assert done.returncode == 0, done.stderr
    assert "no training ranges in this file: the safety layer's range check is off" in done.stdout
    # Loads, with one line saying it cannot be checked for corruption and how to fix that.
    [note] = done.stderr.splitlines()
    assert note.startswith(f"robopg inspect: note: {older}: no integrity digest") and "re-export" in note
    assert "no digest (exported before robopg recorded one" in done.stdout


def test_inspect_of_a_bad_file_names_it_and_the_fix(tmp_path):
    missing = robopg("inspect", str(tmp_path / "nope.onnx"))
    assert missing.returncode == 2 and "nope.onnx: no such file" in missing.stderr
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x01garbage")
    bad = robopg("inspect", str(junk))
    assert bad.returncode == 2 and "truncated or not ONNX" in bad.stderr and "Traceback" not in bad.stderr
