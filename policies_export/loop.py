"""The fixed-rate control loop: read -> act -> apply, once per period, until told to stop.

    result = run_loop(Controller.load("policy.onnx"), robot, LoopConfig(max_duration_s=60))
    print(result.summary)

Scheduling: tick k is due at ``start + k * period`` on the monotonic clock; the loop sleeps until the
deadline, so errors never accumulate into drift. A tick that overruns its slot counts a deadline miss and
the loop skips to the next slot still ahead (no burst of catch-up ticks: the policy was trained at one
action per period).
``max_consecutive_misses`` misses in a row mean the machine cannot hold the rate: the loop stops and says so.

Precise timing (``LoopConfig.precise``, off unless asked): an OS sleep wakes up late (50-100 us on an idle
machine, milliseconds on a loaded one), and a tick that follows 40 ms of idling finds its code and data out of
the CPU's caches and the core in a deep idle state, so the same tick takes an order of magnitude longer than back
to back (scripts/bench_runtime.py). With ``PreciseTiming`` the loop sleeps only until ``spin_s`` before the deadline, runs eight dummy
ticks (``Controller.warm_up``: the whole checks + inference path, not only onnxruntime, which leaves the Python
and numpy half cold; on the last observation in the form it came, so the path the tick takes is the one warmed),
then spins on the clock until the deadline.
Optionally the loop's thread is pinned to one CPU and runs under SCHED_FIFO (``cpu``, ``priority``), so that on a
loaded machine it is neither woken late nor preempted mid-tick. Its cost is the spin: about ``spin_s * rate`` of
one core at most (2.5% at 25 Hz with the default 1 ms), measured with the latencies by ``scripts/bench_runtime.py``.

Every way out is a ``LoopResult`` with a ``stop_reason`` and a message; the loop does not raise for robot
faults. Before stopping mid-motion it sends the neutral action once ("command nothing"), so the arm is not
left executing the policy's last command. SIGINT / SIGTERM stop it cleanly after the current tick.
"""

from __future__ import annotations

import math
import os
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
class PreciseTiming:
    """Spend a little CPU to start each tick on time and run it warm (see the module docstring)."""

    spin_s: float = 0.001
    """Sleep until this long before each deadline, then spin on the clock; at most a quarter of the period is
    spun (a 500 Hz loop spins 0.5 ms of its 2 ms). Longer absorbs later wake-ups, and costs more CPU."""
    warm_ups: int = 8
    """Dummy ticks (``Controller.warm_up``) on waking, before the spin, so the tick runs warm; 0 for none. Each
    costs about one back-to-back tick (15-30 us here): 8 at 25 Hz are ~0.5% of a core. Measured at 25 Hz
    (FetchReach MLP, 3 rounds of 300 ticks): p99 43-56 us with 8, 55-77 us with 4."""
    cpu: int | None = None
    """Pin the loop's thread to this CPU for the run (Linux ``sched_setaffinity``; restored afterwards); None
    leaves scheduling to the OS. Pick a core the robot's other real-time work does not use."""
    priority: int | None = None
    """Run the loop's thread under SCHED_FIFO at this real-time priority (1-99) for the run (Linux; needs root or
    an ``rtprio`` limit; restored afterwards). The thread then wakes on time and ordinary processes cannot preempt
    it, which on a loaded machine is where lateness comes from. None: ordinary scheduling. The kernel's real-time
    throttling (``sched_rt_runtime_us``) still leaves other processes 5% of each core."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.spin_s) and self.spin_s >= 0):
            raise ValueError(f"spin_s must be >= 0 seconds, got {self.spin_s}")
        if self.warm_ups < 0:
            raise ValueError(f"warm_ups must be >= 0, got {self.warm_ups}")
        if self.cpu is not None:
            allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
            if self.cpu not in allowed:
                raise ValueError(f"cpu {self.cpu} is not one this process may run on ({allowed}); pick one of them")
        if self.priority is not None:
            if not hasattr(os, "SCHED_FIFO"):
                raise ValueError("priority needs SCHED_FIFO (Linux); leave it unset on this system")
            top = os.sched_get_priority_max(os.SCHED_FIFO)
            if not 1 <= self.priority <= top:
                raise ValueError(f"priority must be a SCHED_FIFO priority in 1..{top}, got {self.priority}")


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
    precise: PreciseTiming | None = None
    """Precise timing (spin before each deadline, warm-up inference, optional pinning); None (the default) just
    sleeps until each deadline. Only with ``realtime``."""

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
    wait = _Waiter(config.precise, period, controller, clock)
    # A loop starts from the robot's current state: no held action and no history from an earlier run.
    controller.reset()
    with _stop_on_signals() as signalled, _scheduled(config.precise):
        start = clock()
        deadline = start
        while stop is None:
            stop = _limit_reached(config, signalled, tick, clock() - start)
            if stop is not None:
                break
            if rate_hz is not None:
                wait.until(deadline)
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


class _Waiter:
    """Waits for a tick's deadline: a plain sleep, or with ``PreciseTiming`` sleep, warm up, spin."""

    def __init__(
        self, precise: PreciseTiming | None, period: float, controller: Controller, clock: Callable[[], float]
    ) -> None:
        self.precise, self.controller, self.clock = precise, controller, clock
        self.spin_s = min(precise.spin_s, period / 4) if precise is not None else 0.0

    def until(self, deadline: float) -> None:
        remaining = deadline - self.clock()
        if self.precise is None:
            if remaining > 0:
                time.sleep(remaining)
            return
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        if self.precise.warm_ups and remaining > 0:  # already late: do not delay the tick further
            self.controller.warm_up(self.precise.warm_ups)
        while self.clock() < deadline:  # spin: the core stays awake and the wake-up is not the OS's
            pass


@contextmanager
def _scheduled(precise: PreciseTiming | None) -> Iterator[None]:
    """While inside, this thread runs on ``precise.cpu`` only and under SCHED_FIFO at ``precise.priority`` (each
    when set); the previous affinity and policy come back. Raises PermissionError naming the fix."""
    if precise is None or (precise.cpu is None and precise.priority is None):
        yield
        return
    affinity, policy, param = os.sched_getaffinity(0), os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        if precise.cpu is not None:
            os.sched_setaffinity(0, {precise.cpu})
        if precise.priority is not None:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(precise.priority))
            except PermissionError:
                raise PermissionError(
                    f"real-time priority {precise.priority} (SCHED_FIFO) is not permitted for this user: run as "
                    "root, grant an rtprio limit (/etc/security/limits.conf), or leave PreciseTiming.priority unset"
                ) from None
        yield
    finally:
        os.sched_setscheduler(0, policy, param)
        os.sched_setaffinity(0, affinity)


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
