"""`TaskFacts`: what a run knows about its task, the one record the runners, the A3C workers, checkpoints and
export pass around.

A checkpoint stores ``TaskFacts.to_dict()`` under ``"task"`` (plain JSON types, the format checkpoints have
always had); ``TaskFacts.from_dict`` reads it back, including checkpoints written before the asymmetric critic
existed (no ``"privileged"`` entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import envs
from envs.latency_input import LATENCY_FIELD, with_latency_field
from robopg.config import EnvConfig, TrainConfig

_REQUIRED = ("task", "layout", "action_low", "action_high", "control_dt", "success_key")


@dataclass(frozen=True)
class TaskFacts:
    """The task as the policy and the robot see it."""

    task: str
    layout: tuple[tuple[str, int], ...]
    """The robot's raw observation, field by field: ((name, size), ...) in flattening order."""
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    control_dt: float
    """Seconds per control step."""
    success_key: str | None
    """The info key of per-step success ('is_success' for Fetch tasks), None where the task reports none."""
    privileged: tuple[str, ...] | None = None
    """The asymmetric critic's extra inputs after the noiseless observation (the randomisation parameters this
    task varies, spec order); None without an asymmetric critic."""

    @property
    def obs_dim(self) -> int:
        return sum(size for _, size in self.layout)

    @property
    def task_obs_dim(self) -> int:
        """The task's own observation values: the layout without the latency input (``--latency-input``), which is
        what the asymmetric critic's noiseless observation holds."""
        return sum(size for name, size in self.layout if name != LATENCY_FIELD)

    def latency_column(self, cfg: TrainConfig) -> int | None:
        """The column of the asymmetric critic's input (noiseless observation, then ``privileged``) that holds the
        episode's action latency, with ``latency_aligned_advantages``; None without it."""
        if not cfg.policy.latency_aligned_advantages:
            return None
        if self.privileged is None or "action_latency" not in self.privileged:
            raise ValueError(
                f"latency_aligned_advantages credits each action where it executes, by its episode's action latency, "
                f"and the randomisation spec {cfg.env.randomization!r} varies no action_latency on {self.task}. Fix: "
                "add an [action_latency] section to the spec, or drop --latency-aligned-advantages"
            )
        return self.task_obs_dim + self.privileged.index("action_latency")

    @property
    def act_dim(self) -> int:
        return len(self.action_low)

    @property
    def control_rate_hz(self) -> float:
        return 1.0 / self.control_dt

    @classmethod
    def for_run(cls, cfg: TrainConfig) -> TaskFacts:
        """Read the facts from the task (one env built and closed) and the run's config."""
        info = envs.describe_task(cfg.env.task)
        layout = with_latency_field(info.layout) if cfg.env.latency_input else info.layout
        return cls(
            task=info.task,
            layout=tuple((name, int(size)) for name, size in layout.fields),
            action_low=tuple(float(x) for x in info.action_low),
            action_high=tuple(float(x) for x in info.action_high),
            control_dt=float(info.control_dt),
            success_key=info.success_key,
            privileged=tuple(active_parameters(cfg.env)) if cfg.policy.asymmetric_critic else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: lists for the tuples, the layout as [[name, size], ...]."""
        return {
            "task": self.task,
            "privileged": None if self.privileged is None else list(self.privileged),
            "layout": [[name, size] for name, size in self.layout],
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
            "control_dt": self.control_dt,
            "success_key": self.success_key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "checkpoint") -> TaskFacts:
        """The inverse of ``to_dict``; ``source`` names the file in the error for a damaged entry."""
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise ValueError(
                f"{source}: the task facts lack {missing}; is this a checkpoint written by robopg train? "
                "Fix: point at a run directory or .pt file that robopg train wrote"
            )
        privileged = data.get("privileged")
        return cls(
            task=str(data["task"]),
            layout=tuple((str(name), int(size)) for name, size in data["layout"]),
            action_low=tuple(float(x) for x in data["action_low"]),
            action_high=tuple(float(x) for x in data["action_high"]),
            control_dt=float(data["control_dt"]),
            success_key=data["success_key"],
            privileged=None if privileged is None else tuple(privileged),
        )


def active_parameters(env_cfg: EnvConfig) -> list[str]:
    """The parameters of the run's randomisation spec that the task has a target for (spec order)."""
    env = envs.make_env(env_cfg.task, seed=0, randomization=env_cfg.randomization)
    try:
        return list(env.get_wrapper_attr("active_parameters"))
    finally:
        env.close()


def active_spec(env_cfg: EnvConfig) -> envs.RandomizationSpec:
    """The run's randomisation spec without the parameters the task has no target for: ADR manages only what
    this task can vary (a pin on a parameter the task lacks would measure nothing)."""
    spec = envs.load_spec(env_cfg.randomization)
    active = active_parameters(env_cfg)
    return envs.RandomizationSpec(tuple(p for p in spec.parameters if p.name in active), spec.source)
