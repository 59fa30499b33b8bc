"""Automatic domain randomisation (ADR; OpenAI et al. 2019, "Solving Rubik's Cube with a Robot Hand", sec. 5).

Each uniform/loguniform parameter of the run's randomisation spec gives a *limit* [lo, hi]. Training starts
with the parameter's range collapsed onto its nominal value (1 for scaled dynamics, the limit's low end for
absolute quantities such as noise or latency, clamped into the limit). A fraction ``boundary_probability`` of
episodes pins one movable boundary (a range end that can still move toward its limit) at its current value,
the other parameters drawn from their current ranges. The success of each pinned episode goes into that
boundary's buffer; when the buffer holds ``buffer_size`` episodes its mean decides:

    mean >= success_high  ->  the boundary moves outward by one step (toward its limit)
    mean <= success_low   ->  the boundary moves inward by one step (never past nominal)

and the buffer is emptied. Parameters the spec fixes (``fixed``) or draws from a normal stay as written.

Attribution under SAME_STEP autoreset: when environment i's episode ends, the env has already reset it with
the spec set before; so ADR keeps, per environment, the pin of the running episode (``current``) and the pin
already handed to the env for its next episode (``pending``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import envs.vector
from envs.randomization import Distribution, Kind, Mode, ParameterSpec, RandomizationSpec
from robopg import distributed
from robopg.config import AdrConfig

LOW, HIGH = "low", "high"


@dataclass(frozen=True)
class Boundary:
    name: str
    side: str  # LOW or HIGH


class AutomaticDomainRandomization:
    """ADR over the managed parameters of ``limits``; one pin per environment episode. A hook of the
    synchronous runner (robopg/runners/iteration.py, RunHook); its state is checkpointed under "adr".

    limits: the run's randomisation spec. num_envs: environments of the vector env. seed: the pin stream.
    pooled: under torchrun, every rank's pinned episodes are pooled at the end of each iteration (in rank order)
    before the boundaries decide, so every rank moves the same boundaries (robopg/distributed.py); else each
    episode is recorded as it ends.
    Attributes: low, high (name -> current range), nominal, limit (name -> (lo, hi)), step (name -> step).
    """

    checkpoint_key = "adr"

    def __init__(self, limits: RandomizationSpec, cfg: AdrConfig, num_envs: int, seed: int,
                 pooled: bool = False) -> None:
        self.cfg, self.limits = cfg, limits
        self.pooled = pooled
        self.unpooled: list[tuple[Boundary, float]] = []  # this rank's pinned episodes since the last pooling
        managed = [p for p in limits.parameters if p.distribution in (Distribution.UNIFORM, Distribution.LOGUNIFORM)]
        if not managed:
            raise ValueError(
                f"ADR found no uniform or loguniform range in {limits.source}; give the spec ranges to widen "
                "(e.g. --randomization default)"
            )
        self.kinds = {p.name: p.kind for p in managed}
        self.modes = {p.name: p.mode for p in managed}
        self.limit = {p.name: (float(p.low), float(p.high)) for p in managed}
        self.nominal = {p.name: _nominal(p) for p in managed}
        self.step = {}
        for p in managed:
            lo, hi = self.limit[p.name]
            step = cfg.step_fraction * (hi - lo)
            self.step[p.name] = max(1.0, round(step)) if p.kind is Kind.LATENCY else step
        self.low = dict(self.nominal)
        self.high = dict(self.nominal)
        self.boundaries = [Boundary(n, LOW) for n in self.limit if self.limit[n][0] < self.nominal[n]]
        self.boundaries += [Boundary(n, HIGH) for n in self.limit if self.limit[n][1] > self.nominal[n]]
        self.buffers: dict[Boundary, list[float]] = {b: [] for b in self.boundaries}
        self.rng = np.random.default_rng(seed)
        self.current: list[Boundary | None] = [None] * num_envs
        self.pending: list[Boundary | None] = [None] * num_envs
        self.moves = 0  # boundary moves so far, outward or inward

    # ----- the ranges --------------------------------------------------------------------------------------
    def value(self, boundary: Boundary) -> float:
        return self.low[boundary.name] if boundary.side == LOW else self.high[boundary.name]

    def spec(self, pin: Boundary | None = None) -> RandomizationSpec:
        """The spec an episode samples from: current ranges (uniform), ``pin``'s parameter fixed at its boundary."""
        params = []
        for p in self.limits.parameters:
            if p.name not in self.limit:
                params.append(p)
            elif pin is not None and pin.name == p.name:
                params.append(ParameterSpec(p.name, Distribution.FIXED, p.mode, value=self.value(pin)))
            else:
                params.append(ParameterSpec(p.name, Distribution.UNIFORM, p.mode,
                                            low=self.low[p.name], high=self.high[p.name]))
        return RandomizationSpec(tuple(params), f"ADR over {self.limits.source}")

    def choose(self) -> Boundary | None:
        """A pin for one episode: with probability boundary_probability a random movable boundary, else None."""
        if not self.boundaries or self.rng.random() >= self.cfg.boundary_probability:
            return None
        return self.boundaries[int(self.rng.integers(len(self.boundaries)))]

    def record(self, pin: Boundary, success: float) -> None:
        """Add one pinned episode's success; move the boundary when its buffer is full (the ADR update)."""
        buffer = self.buffers[pin]
        buffer.append(float(success))
        if len(buffer) < self.cfg.buffer_size:
            return
        rate = float(np.mean(buffer))
        buffer.clear()
        if rate >= self.cfg.success_high:
            self._move(pin, outward=True)
        elif rate <= self.cfg.success_low:
            self._move(pin, outward=False)

    def _move(self, pin: Boundary, outward: bool) -> None:
        name, step = pin.name, self.step[pin.name]
        lo, hi = self.limit[name]
        nominal = self.nominal[name]
        if pin.side == LOW:
            self.low[name] = max(lo, self.low[name] - step) if outward else min(nominal, self.low[name] + step)
        else:
            self.high[name] = min(hi, self.high[name] + step) if outward else max(nominal, self.high[name] - step)
        self.moves += 1

    # ----- the environments ------------------------------------------------------------------------------------
    def begin(self, env: Any) -> None:
        """Before the env's first reset: give every environment the spec of its first episode."""
        for i in range(len(self.current)):
            self.current[i] = self.choose()
            envs.vector.set_env_spec(env, i, self.spec(self.current[i]))

    def arm(self, env: Any) -> None:
        """After the env's reset: give every environment the spec of its next episode."""
        for i in range(len(self.pending)):
            self.pending[i] = self.choose()
            envs.vector.set_env_spec(env, i, self.spec(self.pending[i]))

    def episode_ended(self, env: Any, index: int, success: float | None) -> None:
        """Environment ``index`` finished the episode of pin ``current[index]`` and already reset into ``pending``."""
        if success is None:
            raise ValueError("ADR needs a task that reports success (a Fetch task's is_success)")
        pin = self.current[index]
        if pin is not None and self.pooled:
            self.unpooled.append((pin, float(success)))
        elif pin is not None:
            self.record(pin, success)
        self.current[index] = self.pending[index]
        self.pending[index] = self.choose()
        envs.vector.set_env_spec(env, index, self.spec(self.pending[index]))

    def iteration_ended(self, env: Any, steps: int, metrics: dict[str, float]) -> None:
        """Pooled: record every rank's pinned episodes of the iteration. Else nothing: ADR moves its boundaries
        per finished episode (``episode_ended``)."""
        if self.pooled:
            for episodes in distributed.world().gather(self.unpooled):
                for pin, success in episodes:
                    self.record(pin, success)
            self.unpooled = []

    # ----- logging and checkpoints -----------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """adr_<name>_low / _high per parameter, and the mean fraction of each limit range covered."""
        out: dict[str, float] = {}
        widths = []
        for name, (lo, hi) in self.limit.items():
            out[f"adr_{name}_low"], out[f"adr_{name}_high"] = self.low[name], self.high[name]
            widths.append((self.high[name] - self.low[name]) / (hi - lo) if hi > lo else 1.0)
        out["adr_coverage"] = float(np.mean(widths))
        out["adr_moves"] = float(self.moves)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "low": dict(self.low),
            "high": dict(self.high),
            "buffers": [[b.name, b.side, list(v)] for b, v in self.buffers.items()],
            "rng": self.rng.bit_generator.state,
            "moves": self.moves,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state["low"]) ^ set(self.limit)
        if unknown:
            raise ValueError(f"ADR checkpoint manages {sorted(state['low'])}, this run's spec {sorted(self.limit)}; "
                             "resume with the randomisation spec the run was started with")
        self.low, self.high = dict(state["low"]), dict(state["high"])
        for name, side, values in state["buffers"]:
            self.buffers[Boundary(name, side)] = list(values)
        self.rng.bit_generator.state = state["rng"]
        self.moves = int(state["moves"])


def _nominal(p: ParameterSpec) -> float:
    """Where a managed parameter's range starts: 1 for scaled dynamics, 0 for absolute quantities, in the limit."""
    nominal = 1.0 if p.kind is Kind.DYNAMICS and p.mode is Mode.SCALED else 0.0
    return float(min(max(nominal, p.low), p.high))
