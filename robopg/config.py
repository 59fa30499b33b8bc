"""Typed configuration: one dataclass per component, a help text per field, checked at construction.

The CLI builds its flags from these dataclasses (``robopg train --help`` lists every field), a config file
(TOML or JSON, one table per section) sets any of them, and flags override the file. The resolved
configuration is written into the run directory as ``config.json`` and read back by ``--resume``.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any


def option(default: Any, help: str) -> Any:  # noqa: A002 - "help" mirrors argparse
    """A dataclass field whose help text the CLI shows."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"help": help})


class Backend(StrEnum):
    SYNC = "sync"
    SUBPROCESS = "subprocess"


class Activation(StrEnum):
    TANH = "tanh"
    ELU = "elu"
    RELU = "relu"


class LRSchedule(StrEnum):
    CONSTANT = "constant"
    LINEAR = "linear"
    ADAPTIVE = "adaptive"


class Algo(StrEnum):
    PPO = "ppo"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class EnvConfig:
    task: str = option("FetchReachDense-v4", "Gymnasium task id with a Box action space, e.g. FetchPush-v4.")
    num_envs: int = option(16, "Environments stepped together per rollout step.")
    randomization: str = option("default", "Domain randomisation: none, default, or a path to a TOML spec.")
    backend: Backend = option(Backend.SYNC, "Vector backend: sync (in-process) or subprocess (shared memory).")

    def __post_init__(self) -> None:
        _check(self.num_envs >= 1, f"num_envs must be >= 1, got {self.num_envs}; pass --num-envs 16, say")
        object.__setattr__(self, "backend", Backend(self.backend))


@dataclass(frozen=True)
class PolicyConfig:
    hidden_sizes: tuple[int, ...] = option((64, 64), "Hidden layer widths of actor and critic MLPs.")
    activation: Activation = option(Activation.TANH, "Hidden activation: tanh, elu or relu.")
    init_log_std: float = option(-0.5, "Initial log standard deviation of the Gaussian (state-independent).")
    obs_clip: float = option(10.0, "Normalised observations are clipped to +-obs_clip.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        object.__setattr__(self, "activation", Activation(self.activation))
        _check(
            len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes),
            f"hidden_sizes must be positive widths, got {self.hidden_sizes}; pass --hidden-sizes 64 64",
        )
        _check(self.obs_clip > 0, f"obs_clip must be > 0, got {self.obs_clip}")


@dataclass(frozen=True)
class PPOConfig:
    rollout_steps: int = option(64, "Steps per environment per rollout (T); a rollout has T * num_envs samples.")
    epochs: int = option(10, "Passes over each rollout in the update.")
    minibatches: int = option(4, "Minibatches per epoch.")
    learning_rate: float = option(1e-3, "Adam learning rate (initial value for the schedules).")
    lr_schedule: LRSchedule = option(
        LRSchedule.ADAPTIVE, "constant, linear (to 0 at total_steps) or adaptive (KL-driven, see desired_kl)."
    )
    desired_kl: float = option(0.01, "Adaptive schedule: lr /1.5 when KL > 2x this, x1.5 when KL < half of it.")
    gamma: float = option(0.95, "Discount factor.")
    gae_lambda: float = option(0.95, "GAE lambda.")
    clip_range: float = option(0.2, "PPO-clip epsilon: ratio clipped to [1 - eps, 1 + eps].")
    clip_value: bool = option(False, "Clip the value update to +-clip_range around the old value.")
    value_coef: float = option(0.5, "Weight of the value loss.")
    entropy_coef: float = option(0.0, "Weight of the entropy bonus.")
    max_grad_norm: float = option(1.0, "Global gradient-norm clip.")
    target_kl: float = option(0.0, "Stop the epochs early when mean KL exceeds 1.5x this (0 disables).")
    normalize_advantages: bool = option(True, "Normalise advantages per minibatch.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr_schedule", LRSchedule(self.lr_schedule))
        _check(self.rollout_steps >= 1, f"rollout_steps must be >= 1, got {self.rollout_steps}")
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.minibatches >= 1, f"minibatches must be >= 1, got {self.minibatches}")
        _check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _check(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        _check(0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        _check(self.clip_range > 0, f"clip_range must be > 0, got {self.clip_range}")
        _check(self.target_kl >= 0, f"target_kl must be >= 0 (0 disables), got {self.target_kl}")


@dataclass(frozen=True)
class RunConfig:
    algo: Algo = option(Algo.PPO, "Algorithm.")
    total_steps: int = option(50_000, "Environment steps to train for (summed over environments).")
    seed: int = option(0, "Seed for environments, network initialisation and sampling.")
    checkpoint_every: int = option(10, "Write a periodic checkpoint every this many iterations (0: final only).")
    torch_threads: int = option(1, "torch intra-op threads (the environments use the other cores).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "algo", Algo(self.algo))
        _check(self.total_steps >= 1, f"total_steps must be >= 1, got {self.total_steps}")
        _check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _check(self.torch_threads >= 1, f"torch_threads must be >= 1, got {self.torch_threads}")


SECTIONS: dict[str, type] = {"env": EnvConfig, "policy": PolicyConfig, "ppo": PPOConfig, "run": RunConfig}


@dataclass(frozen=True)
class TrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def batch_size(self) -> int:
        """Samples per rollout: rollout_steps * num_envs."""
        return self.ppo.rollout_steps * self.env.num_envs

    @property
    def iterations(self) -> int:
        """Rollout/update iterations needed to reach total_steps (the last one may overshoot)."""
        return -(-self.run.total_steps // self.batch_size)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        unknown = set(data) - set(SECTIONS)
        if unknown:
            raise ValueError(f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)}")
        parts = {}
        for name, section_cls in SECTIONS.items():
            values = dict(data.get(name, {}))
            known = {f.name for f in fields(section_cls)}
            typos = set(values) - known
            if typos:
                raise ValueError(
                    f"{source}: unknown field(s) {sorted(typos)} in [{name}]; known: {sorted(known)}"
                )
            parts[name] = section_cls(**values)
        return cls(**parts)

    def replace(self, overrides: dict[str, dict[str, Any]]) -> TrainConfig:
        """A copy with ``{section: {field: value}}`` applied (flags over a config file)."""
        data = self.to_dict()
        for section, values in overrides.items():
            data[section].update(values)
        return TrainConfig.from_dict(data, source="overrides")


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML or JSON config file with sections [env], [policy], [ppo], [run]."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; check the --config path")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {err}") from err
    return TrainConfig.from_dict(data, source=str(path))


def field_help(section_cls: type) -> list[tuple[str, Any, str, Any]]:
    """(name, type annotation, help, default) for each field of a section, for the CLI."""
    out = []
    for f in fields(section_cls):
        default = f.default if f.default is not MISSING else None
        out.append((f.name, f.type, f.metadata.get("help", ""), default))
    return out
