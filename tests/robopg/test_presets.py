"""Presets: shipped recipes that resolve to valid configs, override order defaults < preset < config < flags,
the preset's name in config.json, and clear errors."""

import json
import subprocess
import sys

import pytest

from policies_export import Controller
from robopg.config import PPOConfig, resolve_config
from robopg.presets import describe, preset_names, preset_sections

SHIPPED = ["fetch-pick-and-place", "fetch-push", "fetch-reach", "fetch-slide"]


def robopg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopg", *args], capture_output=True, text=True, timeout=300)


def test_presets_command_lists_each_shipped_preset_on_one_line():
    out = robopg("presets")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line and not line.startswith("Use:")]
    assert [line.split()[0] for line in lines] == SHIPPED
    assert all(len(line.split(None, 1)[1]) > 20 for line in lines)  # a real description each


@pytest.mark.parametrize("name", SHIPPED)
def test_each_preset_is_a_complete_valid_config(name):
    assert name in preset_names() and describe(name)
    cfg = resolve_config(name, None, {})
    assert cfg.run.preset == name
    assert cfg.env.task.startswith("Fetch") and cfg.env.randomization == "sim2real"
    assert cfg.run.total_steps >= 50_000


def test_flags_and_config_file_override_the_preset(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[ppo]\nepochs = 3\n[env]\nnum_envs = 8\n')
    cfg = resolve_config("fetch-push", config, {"env": {"num_envs": 4}, "run": {"seed": 5}})
    assert cfg.env.num_envs == 4  # flag over config file over preset (128)
    assert cfg.ppo.epochs == 3  # config file over preset (8)
    preset = preset_sections("fetch-push")
    # The preset over the defaults, on fields where the two differ.
    assert preset["ppo"]["rollout_steps"] != PPOConfig().rollout_steps
    assert cfg.ppo.rollout_steps == preset["ppo"]["rollout_steps"] and cfg.env.reward.value == "staged"
    assert cfg.run.seed == 5 and cfg.run.preset == "fetch-push"
    # A config file may name the preset itself.
    config.write_text('[run]\npreset = "fetch-reach"\n')
    assert resolve_config(None, config, {}).env.task == "FetchReachDense-v4"


def test_a_preset_run_records_its_name(tmp_path):
    run = tmp_path / "run"
    out = robopg("train", "--preset", "fetch-reach", "--total-steps", "2048", "--num-envs", "4", "--out", str(run),
                 "--no-progress")
    assert out.returncode == 0, out.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["run"]["preset"] == "fetch-reach" and saved["env"]["action_history"] == 3
    policy = tmp_path / "p.onnx"
    assert robopg("export", str(run), "--out", str(policy)).returncode == 0
    assert Controller.load(policy).metadata.preset == "fetch-reach"
    shown = robopg("inspect", str(policy))
    assert "preset fetch-reach" in shown.stdout


def test_unknown_preset_is_a_clear_error():
    out = robopg("train", "--preset", "fetch-psh", "--out", "/tmp/never")
    assert out.returncode == 2
    assert "unknown preset 'fetch-psh'" in out.stderr and "fetch-push" in out.stderr
