"""A randomisation curriculum: the spec's ranges grow from nominal to their full width as training succeeds.

Wide randomisation from the first step stops FetchPush from being learned at all (docs/sim2real.md), while the
same recipe without randomisation learns it; the ramp starts every parameter at its nominal value (as ADR does:
1 for scaled dynamics, 0 for absolute noise, perturbations and latency) and widens all of them together by one
factor alpha in [0, 1]:

    uniform / loguniform [lo, hi]  ->  [n + alpha (lo - n), n + alpha (hi - n)]   (loguniform: in log space)
    fixed v                        ->  n + alpha (v - n)
    normal (mean, std)             ->  (n + alpha (mean - n), alpha std)
    latency (whole steps)          ->  the bounds rounded to integers

alpha grows by (steps of the rollout) / ramp_steps after each rollout whose training success rate reached
success_gate (0: unconditionally, a plain schedule; a rollout in which no episode ended fails the gate, or with
hold_verdict takes the verdict of the last one in which some did), so a policy that has not yet learned the task keeps
learning it at the current width instead of meeting a wider one. Compared with ADR (robopg/adr.py), which moves
each boundary on its own pinned episodes, the ramp needs no boundary episodes and reaches the full ranges in a
known number of steps, which is what a fixed training budget needs. The latency parameters may have a ramp of
their own over the same gated steps, width min(1, gated steps / latency_ramp_steps) (on FetchPush a faster one
did not help: docs/sim2real.md section 8), and a floor under it, latency_start (1: the full delay from the first
step, everything else still ramped).
"""

from __future__ import annotations

import math
from typing import Any

import envs.vector
from envs.randomization import Distribution, Kind, Mode, ParameterSpec, RandomizationSpec
from robopg.config import CurriculumConfig, EnvConfig
from robopg.environment import episode_starts

SPEC_UPDATE_QUANTUM = 0.02  # alpha moves the envs' specs in steps of this size (a respec costs ~1 ms per env)


def nominal_value(p: ParameterSpec) -> float:
    """Where a parameter's range starts: 1 for scaled dynamics, else 0, clamped into the range when it has one."""
    nominal = 1.0 if p.kind is Kind.DYNAMICS and p.mode is Mode.SCALED else 0.0
    if p.distribution in (Distribution.UNIFORM, Distribution.LOGUNIFORM):
        nominal = min(max(nominal, float(p.low)), float(p.high))
    return nominal


def widened(p: ParameterSpec, alpha: float) -> ParameterSpec:
    """Parameter p at width alpha in [0, 1] (module docstring); alpha = 1 gives p's own ranges back."""
    n = nominal_value(p)

    def toward(x: float) -> float:
        return n + alpha * (x - n)

    match p.distribution:
        case Distribution.UNIFORM | Distribution.LOGUNIFORM:
            if p.distribution is Distribution.LOGUNIFORM and n > 0:
                low = math.exp(math.log(n) + alpha * (math.log(p.low) - math.log(n)))
                high = math.exp(math.log(n) + alpha * (math.log(p.high) - math.log(n)))
            else:
                low, high = toward(p.low), toward(p.high)
            if p.kind is Kind.LATENCY:
                low, high = float(round(low)), float(round(high))
            return ParameterSpec(p.name, p.distribution, p.mode, low=low, high=high)
        case Distribution.FIXED:
            value = toward(p.value)
            if p.kind is Kind.LATENCY:
                value = float(round(value))
            return ParameterSpec(p.name, p.distribution, p.mode, value=value)
        case Distribution.NORMAL:
            return ParameterSpec(p.name, p.distribution, p.mode, low=p.low, high=p.high, mean=toward(p.mean),
                                 std=alpha * p.std)
    raise ValueError(f"unknown distribution {p.distribution} of {p.name}")


class RandomizationRamp:
    """The curriculum over ``limits`` (the run's randomisation spec): a run hook (robopg/runners/iteration.py)
    that widens the env's ranges after every rollout (``iteration_ended`` -> ``advance``)."""

    checkpoint_key = "curriculum"

    def __init__(self, limits: RandomizationSpec, cfg: CurriculumConfig) -> None:
        self.limits, self.cfg = limits, cfg
        self.progress = cfg.start * cfg.ramp_steps  # env steps of gated rollouts, counted from width 0
        self._applied: tuple[float, float] | None = None
        self.passed = False  # the gate's verdict on the last rollout in which an episode ended

    @property
    def alpha(self) -> float:
        """The width of every range but latency's."""
        return min(1.0, self.progress / self.cfg.ramp_steps)

    @property
    def latency_alpha(self) -> float:
        """The width of the latency ranges (latency_ramp_steps, or ramp_steps when 0), never below latency_start."""
        ramped = min(1.0, self.progress / (self.cfg.latency_ramp_steps or self.cfg.ramp_steps))
        return max(self.cfg.latency_start, ramped)

    def spec(self, alpha: float | None = None, latency_alpha: float | None = None) -> RandomizationSpec:
        a = self.alpha if alpha is None else alpha
        la = (self.latency_alpha if alpha is None else a) if latency_alpha is None else latency_alpha
        params = tuple(widened(p, la if p.kind is Kind.LATENCY else a) for p in self.limits.parameters)
        width = f"{a:.2f}" if la == a else f"{a:.2f} (latency {la:.2f})"
        return RandomizationSpec(params, f"{self.limits.source} at width {width}")

    def _apply(self, env: Any) -> None:
        def quantised(x: float) -> float:
            return 1.0 if x >= 1.0 else math.floor(x / SPEC_UPDATE_QUANTUM) * SPEC_UPDATE_QUANTUM

        widths = (quantised(self.alpha), quantised(self.latency_alpha))
        if widths == self._applied:
            return
        spec = self.spec(*widths)
        for i in range(env.num_envs):
            envs.vector.set_env_spec(env, i, spec)
        self._applied = widths

    def begin(self, env: Any) -> None:
        self._applied = None  # a new env samples the full spec it was built with, whatever the last env was given
        self._apply(env)

    def arm(self, env: Any) -> None:
        self._apply(env)

    def episode_ended(self, env: Any, index: int, success: float | None) -> None:
        return None

    def iteration_ended(self, env: Any, steps: int, metrics: dict[str, float]) -> None:
        self.advance(env, steps, metrics.get("success_rate", math.nan))

    def advance(self, env: Any, steps: int, success_rate: float) -> None:
        """After a rollout of ``steps`` env steps whose finished episodes succeeded at ``success_rate`` (nan when
        none finished: it fails a positive gate, or with hold_verdict repeats the last verdict)."""
        gate = self.cfg.success_gate
        if not math.isnan(success_rate):
            self.passed = success_rate >= gate
        elif not self.cfg.hold_verdict:
            self.passed = False
        if gate <= 0 or self.passed:
            self.progress += steps
        self._apply(env)

    def metrics(self) -> dict[str, float]:
        out = {"curriculum_alpha": float(self.alpha)}
        if self.cfg.latency_ramp_steps or self.cfg.latency_start:
            out["curriculum_latency_alpha"] = float(self.latency_alpha)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "progress": self.progress, "passed": self.passed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # checkpoints written before latency_ramp_steps hold only alpha, those before hold_verdict no verdict
        self.progress = float(state.get("progress", float(state["alpha"]) * self.cfg.ramp_steps))
        self.passed = bool(state.get("passed", False))
        self._applied = None


class AirGoalRamp:
    """A run hook that raises the training-only in-air goal fraction of FetchPickAndPlace from
    ``air_goal_fraction`` to the task's own over ``air_goal_ramp_steps`` env steps (robopg/environment.py
    ``episode_starts``; envs/batched/starts.py). Evaluation never uses it."""

    checkpoint_key = "air_goal_ramp"

    def __init__(self, cfg: EnvConfig) -> None:
        self.cfg = cfg
        self.steps = 0

    def _apply(self, env: Any) -> None:
        env.unwrapped.set_starts(episode_starts(self.cfg, self.steps))

    def begin(self, env: Any) -> None:
        self._apply(env)

    def arm(self, env: Any) -> None:
        return None

    def episode_ended(self, env: Any, index: int, success: float | None) -> None:
        return None

    def iteration_ended(self, env: Any, steps: int, metrics: dict[str, float]) -> None:
        self.steps += steps
        self._apply(env)

    def metrics(self) -> dict[str, float]:
        return {"air_goal_fraction": float(episode_starts(self.cfg, self.steps).air_goal)}

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
