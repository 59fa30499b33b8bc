"""`DomainRandomization`: per-episode dynamics and perturbations, observation noise/bias, action noise and
action latency; privileged information (clean observations, this episode's values) for an asymmetric critic.

It wraps an env whose observations are already flat (`FlattenObservation`). Rewards and success come from
the true simulator state; the wrapper only changes what the agent sees and what the simulator executes.
With an empty spec its observations, rewards and episodes are exactly the env's.

The per-step corruption is `envs.corruption.StepCorruption` with N = 1, the same code the batched backend
(envs/batched/) runs for N envs, so the same seed gives the same values and the same noise sequence on either
backend.

Every reset and step info carries `clean_obs` ((obs_dim,) float32, the observation before noise and bias)
and `privileged_params` ((P,) float32, this episode's values of `active_parameters`, in that order).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.corruption import RandomizationStreams, StepCorruption
from envs.dynamics import ModelDynamics
from envs.layout import ObservationLayout
from envs.randomization import Kind, Mode, RandomizationSpec, check_pairs, load_spec

UNCORRUPTED_FIELDS = ("desired_goal",)  # the commanded goal is known exactly on the robot
CLEAN_OBS, PRIVILEGED_PARAMS = "clean_obs", "privileged_params"  # info keys
ONLY_ENV = np.zeros(1, dtype=np.intp)  # the wrapper's row in its one-env StepCorruption


class DomainRandomization(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Samples every spec parameter once per episode (at reset) from a generator seeded by reset(seed=s).

    env: flat-observation env, observations of shape (layout.dim,) float32, freshly allocated each step.
    seed: used for the first reset when that reset gets no seed, so sub-envs built with a seed reproduce.
    Attributes: current_values (active parameter -> value this episode), active_parameters (the order of
    info["privileged_params"]), inactive_parameters (spec parameters this env has no target for; never applied
    or reported), streams (this env's RandomizationStreams).
    Its constructor arguments are recorded in `env.spec` (Gymnasium's convention), so `gym.make(env.spec)`
    rebuilds the env with the same spec and seed.
    """

    def __init__(
        self, env: gym.Env, spec: RandomizationSpec, layout: ObservationLayout, seed: int | None = None
    ):
        gym.utils.RecordConstructorArgs.__init__(self, spec=spec, layout=layout, seed=seed)
        gym.Wrapper.__init__(self, env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"DomainRandomization needs a Box action space, got {env.action_space}")
        self.randomization_spec = spec
        self.layout = layout
        self.dynamics = ModelDynamics.for_env(env, model_modes(spec))
        self.inactive_parameters = self.dynamics.inactive
        self.active_parameters = tuple(n for n in spec.names if n not in self.inactive_parameters)
        self.current_values: dict[str, float] = {}
        self._privileged = np.zeros(len(self.active_parameters), dtype=np.float32)
        self._data = getattr(env.unwrapped, "data", None)  # the MuJoCo state object_push kicks
        self._pending_seed = seed
        self._alters_actions = self._perturbs = self._observes = True  # until the first reset says otherwise
        self.streams = RandomizationStreams(active_spec(spec, self.inactive_parameters), obs_mask(layout), seed)
        self.corruption = StepCorruption([self.streams], env.action_space, layout.dim)

    def set_spec(self, spec: RandomizationSpec) -> None:
        """Sample the next episodes from `spec` (same parameters as at construction; see respec)."""
        new = respec(self.randomization_spec, self.inactive_parameters, spec)
        self.dynamics.modes.update(model_modes(new))
        self.streams.spec = new

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None

        values = self.corruption.new_episode(0, seed)
        self.current_values = values
        self._privileged[:] = [values[n] for n in self.active_parameters]
        self.dynamics.apply(
            {n: v for n, v in values.items() if n in self.dynamics.targets}, self.streams.gravity_offset
        )
        c = self.corruption
        # What this episode does per step; an episode that does none of it skips the per-step calls (an empty spec
        # costs InvertedPendulum-v5 about a third of its env step otherwise). None of them draws when skipped.
        self._alters_actions = c.alters_actions
        self._perturbs = bool(c.jitter[0] or c.push[0])
        self._observes = bool(c.corrupt[0] or c.moments is not None)
        obs, info = self.env.reset(seed=seed, options=options)
        info["randomization"] = dict(values)
        return self._observe(obs, info), info

    def step(self, action: np.ndarray):
        corruption = self.corruption
        if self._alters_actions:  # else the agent's action reaches the env untouched
            batch = np.array(action, dtype=corruption.action_dtype).reshape(1, *corruption.neutral.shape)
            action = corruption.actions(batch)[0]
        if self._perturbs:
            for _, seconds in corruption.delays():
                self.dynamics.delay_step(seconds)
            for _, kick in corruption.kicks():
                self._data.qvel[self.dynamics.push_dofs] += kick
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs, info), reward, terminated, truncated, info

    def _observe(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """obs + per-episode bias + per-step noise, in place (obs is a fresh array); the clean observation and
        this episode's values go into info."""
        info[CLEAN_OBS] = obs.copy()
        info[PRIVILEGED_PARAMS] = self._privileged.copy()
        if self._observes:
            self.corruption.observe(obs[None], ONLY_ENV)
        return obs


def model_modes(spec: RandomizationSpec) -> dict[str, Mode]:
    """name -> Mode of every dynamics and perturbation parameter of the spec (what ModelDynamics applies)."""
    return {p.name: p.mode for p in spec.parameters if p.kind in (Kind.DYNAMICS, Kind.PERTURBATION)}


def active_spec(spec: RandomizationSpec, inactive: tuple[str, ...]) -> RandomizationSpec:
    """The spec without the parameters an env has no target for (never sampled, applied or reported).
    Raises ValueError where the spec names one parameter of a pair without the other (randomization.PAIRS)."""
    check_pairs(spec)
    return RandomizationSpec(tuple(p for p in spec.parameters if p.name not in inactive), spec.source)


def respec(
    construction: RandomizationSpec, inactive: tuple[str, ...], spec: RandomizationSpec
) -> RandomizationSpec:
    """The active spec an env samples its next episodes from after set_env_spec(spec): `spec`'s parameters in
    the construction spec's order (so draws and privileged_params keep their order), inactive ones dropped.

    spec must name the construction spec's parameters: all of them, or all but (some of) the inactive ones.
    """
    spec = load_spec(spec)
    names, required = set(spec.names), set(construction.names) - set(inactive)
    if not required <= names <= set(construction.names):
        missing, extra = sorted(required - names), sorted(names - set(construction.names))
        raise ValueError(
            f"set_env_spec: spec {spec.source} has parameters {sorted(names)}, but this env was built with "
            f"{sorted(construction.names)} (missing: {missing}, not in it: {extra}). Fix: give a spec with the same "
            "parameters, only ranges changed (parameters cannot be added or removed after construction)"
        )
    kept = tuple(spec[n] for n in construction.names if n in names and n not in inactive)
    return active_spec(RandomizationSpec(kept, spec.source), ())


def obs_mask(layout: ObservationLayout) -> np.ndarray:
    """(layout.dim,) float32: 1 where observation noise and bias apply, 0 on UNCORRUPTED_FIELDS."""
    mask = np.ones(layout.dim, dtype=np.float32)
    for name in UNCORRUPTED_FIELDS:
        if name in layout.slices:
            mask[layout.slices[name]] = 0.0
    return mask
