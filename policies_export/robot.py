"""What the control loop needs from a robot, real or simulated: read an observation, apply an action, tell
time.

A robot adapter is any object with these three methods; it does not inherit from anything (``typing.Protocol``
checks it structurally). Shipped adapters: ``ReplayRobot`` (replay.py, a recorded log) and robopg's simulated
Fetch robot (``robopg/sim_robot.py``, needs the training extra). docs/runtime.md shows how to write one for
a real arm.

    class MyArm:
        def read(self) -> Observation: ...          # flat (obs_dim,) vector, or {layout name: values}
        def apply(self, action: np.ndarray) -> None: ...   # (act_dim,) float32, already within bounds
        def time(self) -> float: ...                 # stamp of the last observation read, monotonic seconds

Rules the loop relies on:

- ``read`` returns promptly: use an I/O timeout in the driver and raise (``TimeoutError`` is fine) when it
  expires. The loop sends the safe action on any exception and stops after a few in a row.
- ``read`` raises ``RobotStopped`` when there is nothing more to read (log ended, driver shut down): the loop
  then stops cleanly.
- ``time`` is the robot's timestamp of the observation last returned by ``read`` (from the robot's clock, or
  ``time.monotonic()`` at arrival), in seconds on a clock that never goes back. A timestamp that stops
  advancing is how the watchdog sees a frozen sensor stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

Observation = np.ndarray | list[float] | Mapping[str, np.ndarray | list[float]]
"""A flat (obs_dim,) vector of real numbers, or a dict keyed by the policy's layout names."""


class RobotStopped(Exception):
    """Raised by ``Robot.read`` when the robot has no more observations to give; the loop stops cleanly."""


@runtime_checkable
class Robot(Protocol):
    """The three calls the control loop makes on a robot, once each per tick: read, (act), apply."""

    def read(self) -> Observation:
        """The latest observation: (obs_dim,) flat vector or dict keyed by layout name."""
        ...

    def apply(self, action: np.ndarray) -> None:
        """Send one action, (act_dim,) float32 within the policy's bounds."""
        ...

    def time(self) -> float:
        """Timestamp of the observation last returned by ``read``: seconds on a monotonic clock."""
        ...


@runtime_checkable
class EpisodicRobot(Robot, Protocol):
    """A robot whose task has episodes (a simulator, a test rig): the loop resets it between them."""

    def episode_done(self) -> bool:
        """True once the action just applied ended the episode (terminated or time limit)."""
        ...

    def reset(self) -> None:
        """Start the next episode; the next ``read`` returns its first observation."""
        ...
