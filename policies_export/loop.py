"""The fixed-rate control loop: read -> act -> apply, once per period, until told to stop.

    result = run_loop(Controller.load("policy.onnx"), robot, LoopConfig(max_duration_s=60))
    print(result.summary)

Scheduling: tick k is due at ``start + k * period`` on the monotonic clock; the loop sleeps until the
deadline, so errors never accumulate into drift. A tick that overruns its slot counts a deadline miss and
the loop skips to the next slot still ahead (no burst of catch-up ticks: the policy was trained at one
action per period).
``max_consecutive_misses`` misses in a row mean the machine cannot hold the rate: the loop stops and says so.

Every way out is a ``LoopResult`` with a ``stop_reason`` and a message; the loop does not raise for robot
faults. Before stopping mid-motion it sends the neutral action once ("command nothing"), so the arm is not
left executing the policy's last command. SIGINT / SIGTERM stop it cleanly after the current tick.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from policies_export.errors import ObservationError
from policies_export.robot import EpisodicRobot, Observation, Robot, RobotStopped
from policies_export.runtime import Controller
from policies_export.safety import Intervention
from policies_export.telemetry import Telemetry


class StopReason(StrEnum):
    MAX_TICKS = "max_ticks"
    DURATION = "duration"
    EPISODES = "episodes"
    ROBOT_STOPPED = "robot_stopped"
    SIGNAL = "signal"
    RATE_NOT_HELD = "rate_not_held"
    ROBOT_ERROR = "robot_error"
    WIRING_ERROR = "wiring_error"


FAILURES: frozenset[StopReason] = frozenset(
    {StopReason.RATE_NOT_HELD, StopReason.ROBOT_ERROR, StopReason.WIRING_ERROR}
)
"""Stops that need an operator's attention; the others are what was asked for."""


@dataclass(frozen=True)
class LoopConfig:
    """How fast and how long the loop runs. Without any limit it runs until a signal or the robot stops."""

    rate_hz: float | None = None
    """Ticks per second; None means the policy file's ``control_rate_hz`` (what it was trained at)."""
    realtime: bool = True
    """False: never sleep, tick as fast as the robot allows (simulation, evaluation); no deadlines."""
    max_ticks: int | None = None
    """Stop after this many ticks."""
    max_duration_s: float | None = None
    """Stop once this many seconds have passed since the first tick."""
    max_episodes: int | None = None
    """Stop after this many episodes (episodic robots only, e.g. the simulator)."""
    max_consecutive_misses: int = 10
    """Deadline misses in a row that mean the rate cannot be held (one-off misses are OS jitter)."""
    max_consecutive_robot_errors: int = 3
    """Ticks in a row on which the robot adapter may raise before the loop gives up on it."""

    def __post_init__(self) -> None:
        if self.rate_hz is not None and not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number of ticks per second, got {self.rate_hz}")
        for name in ("max_ticks", "max_episodes", "max_consecutive_misses", "max_consecutive_robot_errors"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise ValueError(f"max_duration_s must be > 0, got {self.max_duration_s}")


@dataclass(frozen=True)
class LoopResult:
    stop_reason: StopReason
    message: str
    summary: dict[str, Any]
    """Telemetry summary: ticks, latency, deadline misses, jitter, interventions (telemetry.py)."""

    @property
    def ok(self) -> bool:
        """True when the loop stopped because it was asked to (limit reached, signal, end of log)."""
        return self.stop_reason not in FAILURES


def run_loop(
    controller: Controller,
    robot: Robot,
    config: LoopConfig | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LoopResult:
    """Run ``robot`` with ``controller`` until a limit, a signal, the end of the robot, or a fault.

    An ``ObservationError`` (wiring bug) stops the loop with ``WIRING_ERROR``; robot exceptions send the safe
    action (``Intervention.ROBOT_ERROR``) and stop after ``max_consecutive_robot_errors`` in a row.
    """
    config = config or LoopConfig()
    telemetry = telemetry or Telemetry()
    rate_hz = (config.rate_hz or controller.metadata.control_rate_hz) if config.realtime else None
    period = 1.0 / rate_hz if rate_hz is not None else 0.0
    episodic = isinstance(robot, EpisodicRobot)

    stop: tuple[StopReason, str] | None = None
    tick = consecutive_misses = consecutive_errors = 0
    # A loop starts from the robot's current state: no held action and no history from an earlier run.
    controller.reset()
    with _stop_on_signals() as signalled:
        start = clock()
        deadline = start
        while stop is None:
            stop = _limit_reached(config, signalled, tick, clock() - start)
            if stop is not None:
                break
            if rate_hz is not None and (remaining := deadline - clock()) > 0:
                time.sleep(remaining)
            tick_start = clock()
            lateness = tick_start - deadline if rate_hz is not None else 0.0

            step = _tick(controller, robot, clock, tick_start)
            if step.action is None:  # the robot stopped, or its observation does not fit: nothing was sent
                stop = step.stop
                break
            telemetry.tick(tick, step.stamp, tick_start - start, step.obs, step.action, step.latency,
                           lateness, controller.safety.events)
            tick += 1
            stop = step.stop
            consecutive_errors = consecutive_errors + 1 if step.robot_error else 0
            if stop is None and consecutive_errors >= config.max_consecutive_robot_errors:
                stop = StopReason.ROBOT_ERROR, (
                    f"the robot adapter failed {consecutive_errors} ticks in a row, last: "
                    f"{step.robot_error}. Check the robot connection and its driver ({type(robot).__name__})"
                )
            if stop is None and episodic:
                stop = _episode_boundary(controller, robot, config, telemetry, tick)

            if stop is None and rate_hz is not None:
                deadline += period
                now = clock()
                if now <= deadline:
                    consecutive_misses = 0
                    continue
                # Overran: skip every slot already past, so deadlines stay on the start + k * period grid.
                missed = math.floor((now - deadline) / period) + 1
                telemetry.deadline_misses += missed
                deadline += missed * period
                consecutive_misses += 1
                if consecutive_misses >= config.max_consecutive_misses:
                    stop = StopReason.RATE_NOT_HELD, (
                        f"missed {consecutive_misses} deadlines in a row at {rate_hz:g} Hz (period "
                        f"{period * 1e3:.3g} ms; the last tick took {(now - tick_start) * 1e3:.3g} ms): "
                        "this machine and robot cannot hold the rate. Lower --rate, or make "
                        "robot.read()/apply() faster"
                    )
        duration = clock() - start

    reason, message = stop
    if reason not in (StopReason.ROBOT_STOPPED, StopReason.EPISODES, StopReason.ROBOT_ERROR):
        _send_neutral(controller, robot, telemetry)
    return LoopResult(reason, message, telemetry.summary(reason.value, message, duration, rate_hz))


@dataclass
class _Step:
    """What one tick did. ``action`` None: nothing was sent (see ``stop``)."""

    action: np.ndarray | None = None
    obs: Observation | None = None
    stamp: float | None = None
    latency: float | None = None
    """Seconds in ``Controller.act``; None when the model did not run."""
    robot_error: str = ""
    stop: tuple[StopReason, str] | None = None


def _tick(controller: Controller, robot: Robot, clock: Callable[[], float], tick_start: float) -> _Step:
    """read -> act -> apply. Robot exceptions become the safe action; a wiring bug or RobotStopped ends it."""
    step = _Step()
    try:
        step.obs = robot.read()
        read_s = clock() - tick_start
        step.stamp = robot.time()
    except RobotStopped as err:
        step.stop = StopReason.ROBOT_STOPPED, str(err) or "robot stopped"
        return step
    except Exception as err:
        step.robot_error = f"robot.read() raised {type(err).__name__}: {err}"
        step.action = controller.fallback(Intervention.ROBOT_ERROR, step.robot_error)
    else:
        try:
            t0 = clock()
            step.action = controller.act(step.obs, stamp=step.stamp, read_s=read_s)
            step.latency = clock() - t0
        except ObservationError as err:
            step.stop = StopReason.WIRING_ERROR, (
                f"robot.read() returned an observation that does not fit the policy: {err}. Fix the driver's "
                "read() to return the layout shown by `robopg inspect POLICY.onnx`"
            )
            return step

    try:
        robot.apply(step.action)
    except RobotStopped as err:
        step.stop = StopReason.ROBOT_STOPPED, str(err) or "robot stopped"
    except Exception as err:
        if not step.robot_error:
            step.robot_error = f"robot.apply() raised {type(err).__name__}: {err}"
            controller.safety.record(Intervention.ROBOT_ERROR, step.robot_error)
    return step


def _limit_reached(
    config: LoopConfig, signalled: list[str], ticks: int, elapsed_s: float
) -> tuple[StopReason, str] | None:
    if signalled:
        return StopReason.SIGNAL, f"stopped by {signalled[0]}"
    if config.max_ticks is not None and ticks >= config.max_ticks:
        return StopReason.MAX_TICKS, f"ran {ticks} ticks"
    if config.max_duration_s is not None and elapsed_s >= config.max_duration_s:
        return StopReason.DURATION, f"ran {config.max_duration_s:g} s"
    return None


def _episode_boundary(
    controller: Controller, robot: EpisodicRobot, config: LoopConfig, telemetry: Telemetry, tick: int
) -> tuple[StopReason, str] | None:
    """After an episode's last action: count it, stop at ``max_episodes``, else reset robot and controller."""
    try:
        if not robot.episode_done():
            return None
        telemetry.event("episode_end", tick=tick, episode=telemetry.episodes)
        if config.max_episodes is not None and telemetry.episodes >= config.max_episodes:
            return StopReason.EPISODES, f"ran {telemetry.episodes} episodes"
        robot.reset()
    except Exception as err:
        return StopReason.ROBOT_ERROR, (
            f"the robot adapter failed between episodes: {type(err).__name__}: {err}. "
            f"Check its episode_done()/reset() ({type(robot).__name__})"
        )
    controller.reset()
    return None


def _send_neutral(controller: Controller, robot: Robot, telemetry: Telemetry) -> None:
    """Last command before leaving the loop: the neutral action, so the arm is not left mid-command."""
    try:
        robot.apply(controller.neutral_action.copy())
        telemetry.event("stop_command", action=controller.neutral_action.tolist())
    except Exception as err:  # the robot may already be gone; say so, do not hide the original stop reason
        telemetry.event("stop_command_failed", error=f"{type(err).__name__}: {err}")


@contextmanager
def _stop_on_signals() -> Iterator[list[str]]:
    """While inside, SIGINT and SIGTERM append their name to the yielded list instead of killing the process;
    the previous handlers come back on exit. Signals can only be caught in the main thread; elsewhere the
    caller's own handling applies."""
    signalled: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield signalled
        return

    def handler(signum: int, _frame: object) -> None:
        signalled.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signalled
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
