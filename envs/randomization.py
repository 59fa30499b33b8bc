"""Domain-randomisation specs as data: parse, validate, merge and sample TOML files.

A spec is one TOML table per named parameter, e.g.

    [object_mass]
    distribution = "uniform"   # uniform | loguniform | normal | fixed
    low = 0.8
    high = 1.2
    mode = "scaled"            # scaled: multiplies the model's nominal value; absolute: replaces it

Reality profiles (envs/profiles/) use the same format, usually with `fixed` values. This module is pure
(no MuJoCo): applying values to a simulator lives in dynamics.py and domain_randomization.py.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

SPECS_DIR = Path(__file__).parent / "specs"
PROFILES_DIR = Path(__file__).parent / "profiles"


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    NORMAL = "normal"
    FIXED = "fixed"


class Mode(StrEnum):
    SCALED = "scaled"  # value multiplies the model's nominal value
    ABSOLUTE = "absolute"  # value replaces it


class Kind(StrEnum):
    DYNAMICS = "dynamics"  # a MuJoCo model property (or the Fetch mocap step), sampled per episode
    PERTURBATION = "perturbation"  # the size or rate of a random disturbance of the simulation, always absolute
    NOISE = "noise"  # a standard deviation in observation/action units, always absolute
    LATENCY = "latency"  # whole control steps, always absolute


PARAMETERS: dict[str, Kind] = {
    "object_mass": Kind.DYNAMICS,  # object0 body mass, inertia scaled alike
    "object_friction": Kind.DYNAMICS,  # object0 geom sliding friction
    # Dof damping of object0's free joint (6 dofs: N*s/m linear, N*m*s/rad angular). Absolute by default: a
    # model may give the object no damping (Fetch's nominal is 0.01 on every dof), and no scale moves a zero.
    "object_damping": Kind.DYNAMICS,
    # object0 geom half-sizes (and its bounding radius and boxes, so contacts are not culled); scaled only. The
    # object starts resting on the table: its start height moves with its half-height. Mass is unchanged.
    "object_size": Kind.DYNAMICS,
    "table_friction": Kind.DYNAMICS,  # sliding friction of table0's geoms
    # table0 body height (Fetch: 0.2 m, table top at 0.4 m); the object's start height moves with the top.
    "table_height": Kind.DYNAMICS,
    "link_mass": Kind.DYNAMICS,  # masses (inertias alike) of the robot0: links; other models: every body
    "gripper_gain": Kind.DYNAMICS,  # finger position-actuator kp
    "joint_damping": Kind.DYNAMICS,  # robot joint damping (not the base slides); other models: every dof
    "action_scale": Kind.DYNAMICS,  # Fetch end-effector step per unit action
    # Model timestep, so a control step (n_substeps mj_steps) lasts value x nominal seconds. Absolute: seconds
    # per control step.
    "control_period": Kind.DYNAMICS,
    "gravity_perturbation": Kind.PERTURBATION,  # std (m/s^2) of a per-episode Gaussian 3-vector added to gravity
    # Mean (s) of an exponential delay added to every control step's duration, drawn per step (Peng et al.
    # 2018, "Sim-to-Real Transfer of Robotic Control with Dynamics Randomization": control period plus an
    # exponential action delay).
    "timestep_jitter": Kind.PERTURBATION,
    "object_push": Kind.PERTURBATION,  # speed (m/s) of a random horizontal kick added to the object's velocity
    "object_push_probability": Kind.PERTURBATION,  # chance of such a kick per control step, in [0, 1]
    "observation_noise": Kind.NOISE,  # std of Gaussian noise drawn every step
    # Fraction of each feature's running std (over this env's clean observations so far) used as the std of
    # Gaussian noise drawn every step.
    "observation_noise_relative": Kind.NOISE,
    "observation_bias": Kind.NOISE,  # std of a Gaussian offset drawn once per episode
    "action_noise": Kind.NOISE,  # std of Gaussian noise drawn every step
    "action_latency": Kind.LATENCY,
}

# The modes a parameter accepts, its default first, where they differ from its kind's (dynamics: scaled or
# absolute; every other kind: absolute only).
MODES: dict[str, tuple[Mode, ...]] = {
    "object_damping": (Mode.ABSOLUTE, Mode.SCALED),
    "object_size": (Mode.SCALED,),  # one absolute size does not fit boxes, spheres and cylinders alike
}
UPPER_LIMITS: dict[str, float] = {"object_push_probability": 1.0}  # parameters with a largest meaningful value
# Parameters that mean nothing without each other (a kick's speed and its rate): a spec names both or neither.
PAIRS: tuple[tuple[str, str], ...] = (("object_push", "object_push_probability"),)

# distribution -> (required fields, optional fields); `distribution` and `mode` are allowed everywhere.
FIELDS: dict[Distribution, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Distribution.UNIFORM: (("low", "high"), ()),
    Distribution.LOGUNIFORM: (("low", "high"), ()),
    Distribution.NORMAL: (("mean", "std"), ("low", "high")),  # low/high clip the draw
    Distribution.FIXED: (("value",), ()),
}
EXAMPLE_VALUES = {"low": 0.8, "high": 1.2, "mean": 1.0, "std": 0.1, "value": 1.0}


def allowed_modes(name: str) -> tuple[Mode, ...]:
    """The modes parameter `name` accepts, its default first."""
    if name in MODES:
        return MODES[name]
    return (Mode.SCALED, Mode.ABSOLUTE) if PARAMETERS[name] is Kind.DYNAMICS else (Mode.ABSOLUTE,)


def default_mode(name: str) -> Mode:
    return allowed_modes(name)[0]


@dataclass(frozen=True)
class ParameterSpec:
    """One randomised parameter. All known parameters are non-negative quantities; draws are clipped at 0."""

    name: str
    distribution: Distribution
    mode: Mode
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    std: float | None = None
    value: float | None = None

    @property
    def kind(self) -> Kind:
        return PARAMETERS[self.name]

    def sample(self, rng: np.random.Generator) -> float:
        """One draw. Latency draws are whole steps (uniform: integers low..high inclusive)."""
        match self.distribution:
            case Distribution.FIXED:
                x = self.value
            case Distribution.UNIFORM if self.kind is Kind.LATENCY:
                x = rng.integers(int(self.low), int(self.high) + 1)
            case Distribution.UNIFORM:
                x = rng.uniform(self.low, self.high)
            case Distribution.LOGUNIFORM:
                x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            case Distribution.NORMAL:
                x = rng.normal(self.mean, self.std)
        lo, hi = self.range()
        x = min(max(float(x), lo), hi)
        return float(round(x)) if self.kind is Kind.LATENCY else x

    def range(self) -> tuple[float, float]:
        """Closed interval every draw falls in."""
        if self.distribution is Distribution.FIXED:
            return (self.value, self.value)
        if self.distribution is Distribution.NORMAL:
            lo = 0.0 if self.low is None else max(0.0, self.low)
            hi = UPPER_LIMITS.get(self.name, math.inf)
            return (lo, hi if self.high is None else min(self.high, hi))
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"distribution": str(self.distribution), "mode": str(self.mode)}
        for field in ("low", "high", "mean", "std", "value"):
            if getattr(self, field) is not None:
                out[field] = getattr(self, field)
        return out


@dataclass(frozen=True)
class RandomizationSpec:
    """An ordered set of parameters; empty means no randomisation. `source` names the file it came from."""

    parameters: tuple[ParameterSpec, ...] = ()
    source: str = "none"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    def __getitem__(self, name: str) -> ParameterSpec:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"spec {self.source} has no parameter '{name}' (has {self.names})")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def merged_with(self, other: RandomizationSpec) -> RandomizationSpec:
        """`other`'s entries (e.g. a reality profile) replace same-named entries of this spec."""
        replaced = {p.name: p for p in other.parameters}
        kept = tuple(replaced.pop(p.name, p) for p in self.parameters)
        extra = tuple(p for p in other.parameters if p.name in replaced)
        source = other.source if not self.parameters else f"{self.source} + {other.source}"
        return RandomizationSpec(kept + extra, source if other.parameters else self.source)

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        """One draw of every parameter, in spec order (so a seeded rng gives a reproducible sequence)."""
        return {p.name: p.sample(rng) for p in self.parameters}

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {p.name: p.range() for p in self.parameters}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; `from_dict` reads it back."""
        return {"source": self.source, "parameters": {p.name: p.to_dict() for p in self.parameters}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RandomizationSpec:
        source = str(data.get("source", "<dict>"))
        return _parse_tables(data.get("parameters", {}), source)


def check_pairs(spec: RandomizationSpec) -> None:
    """Raise ValueError where `spec` names one parameter of a PAIRS entry without the other."""
    for a, b in PAIRS:
        if (a in spec) != (b in spec):
            has, lacks = (a, b) if a in spec else (b, a)
            raise ValueError(
                f"spec {spec.source} has [{has}] but not [{lacks}]; they act together. Fix: add a [{lacks}] "
                f'table (e.g. distribution = "fixed", value = ...) or remove [{has}]'
            )


def _close(word: str, options: list[str]) -> str:
    match = difflib.get_close_matches(word, options, n=1)
    return f" Did you mean '{match[0]}'?" if match else ""


def _parse_parameter(name: str, table: Any, source: str) -> ParameterSpec:
    def fail(problem: str, fix: str) -> ValueError:
        return ValueError(f"{source}: [{name}] {problem}. Fix: {fix}")

    if name not in PARAMETERS:
        known = sorted(PARAMETERS)
        raise ValueError(
            f"{source}: unknown parameter '{name}'.{_close(name, known)} Fix: use one of the known parameters: "
            + ", ".join(known)
        )
    if not isinstance(table, Mapping):
        raise fail(
            "is not a table", f'write it as a table: [{name}] then distribution = "fixed", value = ...'
        )
    if "distribution" not in table:
        raise fail(
            "is missing field 'distribution'", f"add distribution = one of {[str(d) for d in Distribution]}"
        )
    try:
        dist = Distribution(table["distribution"])
    except ValueError:
        options = [str(d) for d in Distribution]
        raise fail(
            f"has unknown distribution '{table['distribution']}'.{_close(str(table['distribution']), options)}",
            f"use one of {options}",
        ) from None
    required, optional = FIELDS[dist]
    allowed = ("distribution", "mode", *required, *optional)
    for field in table:
        if field not in allowed:
            raise fail(
                f"has unknown field '{field}'.{_close(field, list(allowed))}",
                f"a '{dist}' distribution takes only {list(allowed)}",
            )
    for field in required:
        if field not in table:
            raise fail(
                f"is missing field '{field}' for distribution '{dist}'",
                f"add {field} = {EXAMPLE_VALUES[field]} (or the value you mean)",
            )
    numbers: dict[str, float] = {}
    for field in (*required, *optional):
        if field in table:
            v = table[field]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise fail(f"field '{field}' is {v!r}", f"give {field} a finite number")
            numbers[field] = float(v)

    kind = PARAMETERS[name]
    mode = default_mode(name)
    if "mode" in table:
        try:
            mode = Mode(table["mode"])
        except ValueError:
            raise fail(
                f"has unknown mode '{table['mode']}'", 'use mode = "scaled" or mode = "absolute"'
            ) from None
        if mode not in allowed_modes(name):
            allowed = allowed_modes(name)[0]
            why = (
                f"is a {kind} parameter and cannot be scaled"
                if kind is not Kind.DYNAMICS
                else f"accepts only mode = \"{allowed}\""
            )
            raise fail(why, f'remove the mode line or write mode = "{allowed}"')

    low, high = numbers.get("low"), numbers.get("high")
    if low is not None and high is not None and low > high:
        raise fail(f"has low ({low:g}) > high ({high:g})", "swap low and high")
    if numbers.get("std", 0.0) < 0:
        raise fail(f"has negative std ({numbers['std']:g})", "std must be >= 0")
    if dist is Distribution.LOGUNIFORM and low <= 0:
        raise fail(
            f"is loguniform with low = {low:g}", "loguniform needs low > 0; use uniform for a range from 0"
        )
    for field in ("low", "value"):
        if numbers.get(field, 0.0) < 0:
            raise fail(
                f"has {field} = {numbers[field]:g} < 0",
                f"{name} is a non-negative quantity; use {field} >= 0",
            )
    if name in UPPER_LIMITS:
        limit = UPPER_LIMITS[name]
        for field in ("low", "high", "mean", "value"):
            if numbers.get(field, 0.0) > limit:
                raise fail(
                    f"has {field} = {numbers[field]:g} > {limit:g}",
                    f"{name} is at most {limit:g} (a probability per control step); use {field} <= {limit:g}",
                )
    if kind is Kind.LATENCY:
        for field in ("low", "high", "value"):
            if field in numbers and not numbers[field].is_integer():
                raise fail(
                    f"has {field} = {numbers[field]:g}", "latency counts whole control steps; use an integer"
                )
    return ParameterSpec(name=name, distribution=dist, mode=mode, **numbers)


def _parse_tables(tables: Mapping[str, Any], source: str) -> RandomizationSpec:
    return RandomizationSpec(tuple(_parse_parameter(n, t, source) for n, t in tables.items()), source)


def parse_spec_file(path: str | Path) -> RandomizationSpec:
    """Read and validate one TOML spec or profile file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"randomization file '{path}' does not exist. Fix: check the path (cwd is {Path.cwd()})"
        )
    try:
        tables = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:  # its message carries "(at line N, column M)"
        raise ValueError(f"{path}: invalid TOML: {err}. Fix: correct the syntax at that line") from None
    return _parse_tables(tables, str(path))


def load_spec(name_or_path: str | Path | RandomizationSpec) -> RandomizationSpec:
    """'none' -> empty spec; a shipped spec's name ('default', 'sim2real': envs/specs/NAME.toml); else a TOML path."""
    if isinstance(name_or_path, RandomizationSpec):
        return name_or_path
    if name_or_path == "none":
        return RandomizationSpec()
    if str(name_or_path) in list_specs():
        return parse_spec_file(SPECS_DIR / f"{name_or_path}.toml")
    if not Path(name_or_path).is_file():
        raise ValueError(
            f"randomization spec '{name_or_path}' is not 'none', a shipped spec ({', '.join(list_specs())}) or an "
            f"existing file. Fix: pass one of those (cwd is {Path.cwd()})"
        )
    return parse_spec_file(name_or_path)


def list_specs() -> list[str]:
    """Names of the randomisation specs shipped in envs/specs/."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def list_profiles() -> list[str]:
    """Names of the reality profiles shipped in envs/profiles/."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path | RandomizationSpec) -> RandomizationSpec:
    """A shipped profile by name (see list_profiles()) or a user's TOML file path."""
    if isinstance(name_or_path, RandomizationSpec):
        return name_or_path
    if Path(name_or_path).is_file():
        return parse_spec_file(name_or_path)
    if str(name_or_path) in list_profiles():
        return parse_spec_file(PROFILES_DIR / f"{name_or_path}.toml")
    raise ValueError(
        f"profile '{name_or_path}' is neither a shipped profile nor an existing file.{_close(str(name_or_path), list_profiles())} "
        f"Fix: pass one of {list_profiles()} or the path of a TOML file"
    )
