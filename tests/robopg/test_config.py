"""Config: validation messages, file loading with typo detection, flag overrides, CLI help."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

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


@pytest.mark.parametrize(("table", "message"), [
    ('[ppo]\nlearning_rate = "fast"', '[ppo] learning_rate = "fast" is not a number. Fix: write it like the default, '
     'learning_rate = 0.001'),
    ('[run]\ntotal_steps = "1000"', '[run] total_steps = "1000" is not an integer. Fix: write it like the default, '
     'total_steps = 50000'),
    ("[run]\ntotal_steps = true", "[run] total_steps = true is not an integer"),  # a boolean is not 1
    ("[policy]\nhidden_sizes = 64", "[policy] hidden_sizes = 64 is not a list of integers. Fix: write it like the "
     "default, hidden_sizes = [64, 64]"),
    ("[env]\nnum_envs = 2.5", "[env] num_envs = 2.5 is not an integer. Fix: write it like the default, num_envs = 16"),
    ("[env]\nrandomization = 5", '[env] randomization = 5 is not a string. Fix: write it like the default, '
     'randomization = "default"'),
    ('[policy]\nactivation = "sigmoid"', '[policy] activation = "sigmoid" is not one of "tanh", "elu", "relu"'),
    ('[run]\nlogger = "wandb"', '[run] logger = "wandb" is not a list of values from "tensorboard", "wandb", '
     '"mlflow". Fix: write it like the default, logger = ["tensorboard"]'),
    ("[ppo]\nclip_value = 1", "[ppo] clip_value = 1 is not true or false"),
    ("run = 5", "[run] must be a table of fields, got 5"),
])
def test_a_value_of_the_wrong_type_in_a_config_file_is_named_with_the_fix(tmp_path, table, message):
    path = tmp_path / "bad.toml"
    path.write_text(table + "\n")
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: {message}") and "Fix:" in str(err.value)
    assert "\n" not in str(err.value)


def test_every_field_of_every_section_is_type_checked(tmp_path):
    """One generic check from the dataclass annotations: a value of the wrong kind for any field is refused."""
    import typing
    from dataclasses import fields
    from enum import Enum

    from robopg.config import SECTIONS
    from robopg.field_types import optional_inner

    checked = 0
    for section, section_cls in SECTIONS.items():
        for f in fields(section_cls):
            kind = typing.get_type_hints(section_cls)[f.name]
            kind = optional_inner(kind) or kind  # X | None is checked as X (None only leaves it unset)
            wrong = {int: '"3"', float: '"0.5"', bool: "1", str: "5"}.get(kind, "64")  # tuples get a bare number
            if isinstance(kind, type) and issubclass(kind, Enum):
                wrong = '"no-such-choice"'
            path = tmp_path / f"{section}_{f.name}.toml"
            path.write_text(f"[{section}]\n{f.name} = {wrong}\n")
            fix = "write it like the default" if f.default is not None else "write a number, or leave the field out"
            with pytest.raises(ValueError, match=rf"\[{section}\] {f.name} = .* is not .* Fix: {fix}"):
                load_config(path)
            checked += 1
    assert checked > 100  # every section's fields, the algorithm sections included


def test_numbers_are_accepted_for_floats_and_lists_for_tuples(tmp_path):
    path = tmp_path / "ok.toml"
    path.write_text("[ppo]\nlearning_rate = 1\n[policy]\nhidden_sizes = [32, 16]\n")
    cfg = load_config(path)
    assert cfg.ppo.learning_rate == 1.0 and isinstance(cfg.ppo.learning_rate, float)
    assert cfg.policy.hidden_sizes == (32, 16)


def test_minibatches_beyond_the_rollout_are_refused_before_training():
    with pytest.raises(ValueError, match=r"\[ppo\] minibatches = 64 is more than the 16 samples of a rollout "
                                         r"\(rollout_steps 8 x num_envs 2\); pass --minibatches 4"):
        TrainConfig().replace({"env": {"num_envs": 2}, "ppo": {"rollout_steps": 8, "minibatches": 64}})


def test_the_initial_log_std_is_the_algorithms_unless_the_policy_section_sets_it(tmp_path):
    """[policy] init_log_std unset: -0.5, a2c/a3c/reinforce -1.0 (docs/bench_algorithms.md); set (file or flag): that value.
    The unset field stays unset through config.json, so a resumed run resolves it the same way."""
    from robopg.facts import TaskFacts
    from robopg.modules.actor_critic import GaussianActorCritic
    from robopg.modules.build import build_policy

    cfg = TrainConfig()
    assert cfg.policy.init_log_std is None and cfg.init_log_std == -0.5
    assert [cfg.replace({"run": {"algo": a}}).init_log_std for a in ("ppo-kl", "trpo", "reinforce", "a2c", "a3c")] == \
        [-0.5, -0.5, -1.0, -1.0, -1.0]
    assert cfg.replace({"run": {"algo": "a2c"}, "policy": {"init_log_std": 0}}).init_log_std == 0.0
    saved = cfg.replace({"run": {"algo": "a2c"}}).to_dict()
    assert saved["policy"]["init_log_std"] is None
    assert TrainConfig.from_dict(json.loads(json.dumps(saved))).init_log_std == -1.0
    path = tmp_path / "std.toml"
    path.write_text('[policy]\ninit_log_std = "wide"\n')
    with pytest.raises(ValueError, match=r'\[policy\] init_log_std = "wide" is not a number. Fix: write a number, or '
                                         r"leave the field out for its default"):
        load_config(path)
    a2c = cfg.replace({"run": {"algo": "a2c"}, "env": {"task": "InvertedPendulum-v5", "randomization": "none"}})
    policy = build_policy(a2c, TaskFacts.for_run(a2c))
    assert torch.allclose(policy.log_std, torch.full((1,), -1.0))
    bare = GaussianActorCritic(3, 2, np.array([-1.0, -1.0]), np.array([1.0, 1.0]), a2c.policy)  # no algorithm: -0.5
    assert torch.allclose(bare.log_std, torch.full((2,), -0.5))
