"""Config: validation messages, file loading with typo detection, flag overrides, CLI help."""

import json
import subprocess
import sys

import pytest

from robopg.cli import build_parser
from robopg.config import EnvConfig, PPOConfig, TrainConfig, load_config


def test_constraints_name_the_field_and_the_fix():
    with pytest.raises(ValueError, match="num_envs must be >= 1.*--num-envs"):
        EnvConfig(num_envs=0)
    with pytest.raises(ValueError, match="gamma must be in"):
        PPOConfig(gamma=1.5)
    with pytest.raises(ValueError, match="'fast'"):
        PPOConfig(lr_schedule="fast")


def test_config_file_typo_is_reported_with_known_fields(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[ppo]\nlearnig_rate = 0.1\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['learnig_rate'\] in \[ppo\]"):
        load_config(path)


def test_file_then_flags_precedence(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[env]\ntask = "Pendulum-v1"\nnum_envs = 4\n[ppo]\nepochs = 3\n')
    base = load_config(path)
    assert (base.env.task, base.env.num_envs, base.ppo.epochs) == ("Pendulum-v1", 4, 3)
    cfg = base.replace({"env": {"num_envs": 8}})
    assert (cfg.env.task, cfg.env.num_envs, cfg.ppo.epochs) == ("Pendulum-v1", 8, 3)
    assert cfg.batch_size == 8 * cfg.ppo.rollout_steps
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_cli_flags_map_onto_sections():
    from robopg.cli import _overrides

    args = build_parser().parse_args(
        ["train", "--task", "Pendulum-v1", "--num-envs", "2", "--hidden-sizes", "32", "32", "--no-normalize-advantages",
         "--total-steps", "100", "--out", "x"]
    )
    assert _overrides(args) == {
        "env": {"task": "Pendulum-v1", "num_envs": 2},
        "policy": {"hidden_sizes": (32, 32)},
        "ppo": {"normalize_advantages": False},
        "run": {"total_steps": 100},
    }


def test_help_documents_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "robopg.cli", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--task", "--algo", "--total-steps", "--num-envs", "--seed", "--randomization", "--out",
                 "--config", "--resume", "--clip-range", "--target-kl", "--lr-schedule"):
        assert flag in out.stdout
    for cmd in ("export", "evaluate"):
        assert subprocess.run([sys.executable, "-m", "robopg.cli", cmd, "--help"], capture_output=True).returncode == 0
