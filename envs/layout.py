"""Named, fixed-order flattening of observations into one float32 vector.

The layout travels into the exported policy, so the robot side can check (and build) observations by name.
Goal-conditioned Dict observations always flatten as observation, achieved_goal, desired_goal, not in
gymnasium's alphabetical Dict-space order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import gymnasium as gym
import numpy as np

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
BOX_FIELD = "obs"


@dataclass(frozen=True)
class ObservationLayout:
    """Ordered named fields of a flat observation vector.

    fields: ((name, size), ...) in the order they appear in the flat vector.
    """

    fields: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(
                f"observation layout has duplicate field names: {names}; give each field its own name"
            )
        for name, size in self.fields:
            if int(size) != size or size <= 0:
                raise ValueError(
                    f"observation field '{name}' has size {size}; sizes must be positive integers"
                )
        # Normalise to plain ints/str so equality and JSON round trips are exact.
        object.__setattr__(self, "fields", tuple((str(n), int(s)) for n, s in self.fields))

    @property
    def dim(self) -> int:
        """Length of the flat vector."""
        return sum(size for _, size in self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.fields)

    @cached_property
    def slices(self) -> dict[str, slice]:
        """name -> slice of the flat vector holding that field."""
        out, start = {}, 0
        for name, size in self.fields:
            out[name] = slice(start, start + size)
            start += size
        return out

    def flatten(self, obs: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
        """Dict observation (or a Box observation for a one-field layout) -> float32 vector of shape (dim,)."""
        if not isinstance(obs, Mapping):
            if len(self.fields) != 1:
                raise ValueError(
                    f"got an array observation but the layout has fields {self.names}; pass a dict"
                )
            flat = np.asarray(obs, dtype=np.float32).reshape(-1)
            if flat.shape[0] != self.dim:
                raise ValueError(
                    f"observation has {flat.shape[0]} values, layout expects {self.dim} ({self.fields})"
                )
            return flat
        out = np.empty(self.dim, dtype=np.float32)
        for name, size in self.fields:
            if name not in obs:
                raise ValueError(
                    f"observation dict lacks field '{name}' (has {sorted(obs)}; layout {self.fields})"
                )
            part = np.asarray(obs[name]).reshape(-1)
            if part.shape[0] != size:
                raise ValueError(
                    f"observation field '{name}' has {part.shape[0]} values, layout expects {size}"
                )
            out[self.slices[name]] = part
        return out

    def to_list(self) -> list[list[str | int]]:
        """JSON form: [[name, size], ...]."""
        return [[name, size] for name, size in self.fields]

    @classmethod
    def from_list(cls, items: list) -> ObservationLayout:
        return cls(tuple((str(name), int(size)) for name, size in items))

    @classmethod
    def from_space(cls, space: gym.Space) -> ObservationLayout:
        """Layout for a Box or a Dict-of-Box observation space."""
        if isinstance(space, gym.spaces.Box):
            return cls(((BOX_FIELD, int(np.prod(space.shape))),))
        if isinstance(space, gym.spaces.Dict):
            for key, sub in space.spaces.items():
                if not isinstance(sub, gym.spaces.Box):
                    raise ValueError(
                        f"Dict observation field '{key}' is {type(sub).__name__}; only Box fields flatten"
                    )
            keys = list(space.spaces)
            if set(keys) == set(GOAL_KEYS):
                keys = list(GOAL_KEYS)
            return cls(tuple((key, int(np.prod(space.spaces[key].shape))) for key in keys))
        raise ValueError(f"observation space {space} is neither Box nor Dict of Box; cannot flatten it")


class FlattenObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Flattens Box or Dict observations into a float32 Box in `layout` order. Records its (no) constructor
    arguments, as Gymnasium's wrappers do, so `gym.make(env.spec)` rebuilds the wrapped env."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        self.layout = ObservationLayout.from_space(env.observation_space)
        space = env.observation_space
        if isinstance(space, gym.spaces.Box):  # keep a Box's own bounds
            low, high = space.low.reshape(-1).astype(np.float32), space.high.reshape(-1).astype(np.float32)
        else:
            low = np.full(self.layout.dim, -np.inf, dtype=np.float32)
            high = np.full(self.layout.dim, np.inf, dtype=np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: Mapping[str, np.ndarray] | np.ndarray) -> np.ndarray:
        return self.layout.flatten(observation)
