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


def test_each_algorithm_has_its_own_section_and_flags(tmp_path):
    from robopg.cli import _overrides, selected_algo

    args = build_parser(selected_algo(["train", "--algo", "trpo"])).parse_args(
        ["train", "--algo", "trpo", "--max-kl", "0.02", "--rollout-steps", "32", "--out", "x"])
    assert _overrides(args) == {"run": {"algo": "trpo"}, "trpo": {"max_kl": 0.02, "rollout_steps": 32}}
    # A flag of another algorithm is refused rather than silently ignored.
    with pytest.raises(SystemExit):
        build_parser(selected_algo(["train", "--algo", "a2c"])).parse_args(
            ["train", "--algo", "a2c", "--clip-range", "0.1", "--out", "x"])
    # Without --algo, the config file's algorithm decides which flags apply.
    path = tmp_path / "c.toml"
    path.write_text('[run]\nalgo = "reinforce"\n[reinforce]\nbaseline = "average"\n[ppo]\nepochs = 3\n')
    assert selected_algo(["train", "--config", str(path)]).value == "reinforce"
    cfg = load_config(path)
    assert cfg.algorithm is cfg.reinforce and cfg.reinforce.baseline.value == "average"
    assert cfg.batch_size == cfg.env.num_envs * cfg.reinforce.rollout_steps
    saved = cfg.to_dict()
    assert set(saved) == {"env", "policy", "run", "adr", "curriculum", "reinforce"}  # only the algorithm in use
    assert TrainConfig.from_dict(saved).reinforce == cfg.reinforce


def test_cross_section_constraints_name_the_fix():
    with pytest.raises(ValueError, match="shared-trunk"):
        TrainConfig().replace({"run": {"algo": "trpo"}, "policy": {"shared_trunk": True}})
    with pytest.raises(ValueError, match="multiple of 4"):
        TrainConfig().replace({"run": {"algo": "a3c"}, "a3c": {"workers": 4}, "env": {"num_envs": 6}})
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['clip_range'\] in \[a2c\]"):
        TrainConfig().replace({"a2c": {"clip_range": 0.1}})
