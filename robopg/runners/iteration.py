"""The contracts between the trainer and its runners: what a runner reads of the run (`RunState`), what it
reports per iteration (`Iteration`), and the hooks that follow the run's environments (`RunHook`).

docs/design.md ("Runners") draws how they fit together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from robopg.algos import Algorithm
from robopg.config import TrainConfig
from robopg.distributed import Local
from robopg.facts import TaskFacts
from robopg.modules import GaussianActorCritic


@dataclass
class Iteration:
    """One collect-and-update a runner finished (for A3C: one worker's)."""

    global_step: int
    """Environment steps of the run after it (all workers)."""
    steps: int
    """Environment steps it collected."""
    metrics: dict[str, float]
    """The algorithm's update metrics, the episode statistics, steps_per_second, collect/update seconds."""
    histograms: dict[str, np.ndarray] = field(default_factory=dict)
    """Randomisation values the environments were reset with (name -> values)."""


Record = Callable[[Iteration], dict[str, float]]
"""The trainer's per-iteration step (log, progress, periodic checkpoint); returns the metrics it logged."""


class RunHook(Protocol):
    """Follows the run's environments and takes part in its logs and checkpoints (ADR, robopg/adr.py, is one).

    The synchronous runner calls, in this order: ``begin(env)`` before the env's first reset, ``arm(env)``
    after it, ``episode_ended`` for every finished episode (the env has already reset it), and
    ``iteration_ended`` after each update; the trainer logs ``metrics()`` every iteration and checkpoints
    ``state_dict()`` under ``checkpoint_key`` (``load_state_dict`` on resume). A3C runs no hooks (its config
    refuses the options that need one).
    """

    checkpoint_key: str

    def begin(self, env: Any) -> None: ...

    def arm(self, env: Any) -> None: ...

    def episode_ended(self, env: Any, index: int, success: float | None) -> None: ...

    def iteration_ended(self, env: Any, steps: int, metrics: dict[str, float]) -> None: ...

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class RunState(Protocol):
    """What a runner reads of the run (robopg/runners/trainer.py's Trainer is one) and the counters it advances
    through ``Record``."""

    cfg: TrainConfig
    facts: TaskFacts
    policy: GaussianActorCritic
    algo: Algorithm
    action_generator: torch.Generator
    """Action sampling (and, before it, the policy's initial weights)."""
    generator: torch.Generator
    """The updates' draws (minibatch shuffles)."""
    hooks: Sequence[RunHook]
    world: Local
    """This process's rank among the run's (robopg/distributed.py; ``Local`` outside torchrun)."""
    global_step: int
    iteration: int
