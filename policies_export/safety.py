"""The safety layer: every check that can replace or change an action, in one place, in the order it runs.

Observation side, before the model runs; the first check that fires replaces the action with the safe action:

    1. e-stop engaged (hook or latch)                       -> Intervention.ESTOP (always the neutral action)
    2. robot.read() took longer than max_read_s             -> Intervention.SLOW_READ
    3. robot timestamp not advancing for > max_stale_ticks,
       or going back (at once: older than what was acted on) -> Intervention.STALE_OBS
    4. NaN / inf in the observation                         -> Intervention.NONFINITE_OBS
    5. a value outside the range seen in training,
       widened by the file's tolerance                      -> Intervention.OBS_OUT_OF_RANGE
       outside the training range but within the tolerance  -> Intervention.OBS_NEAR_MISS (counted only: the
                                                               policy's action is sent)

Action side, after the model runs:

    6. NaN / inf in the model output (the action, or a
       recurrent policy's next state)                       -> Intervention.NONFINITE_ACTION (safe action)
    7. outside the action bounds                            -> Intervention.ACTION_CLIPPED (clipped)
    8. moved more than max_action_change since last tick    -> Intervention.RATE_LIMITED (limited)

From the control loop: the robot adapter raised (read or apply)  -> Intervention.ROBOT_ERROR (safe action).

Safe action: ``"hold"`` repeats the last action sent (the neutral action at the start of an episode);
``"zero"`` sends the neutral action, zero clipped into the bounds ("command nothing" for delta/velocity
actions). The e-stop always sends the neutral action: holding a velocity command would keep the arm moving.
The safe action is not rate limited: it is what the robot is allowed to do at any time.

The observation range (check 5). The training range of value i is the normaliser's mean -+ clip x std
(``observation_low`` / ``observation_high``, robopg/export.py). For a feature that was constant in training,
std ~ 0 and that range is a point: any sensor noise would leave it and freeze the robot on the safe action. So
each range is widened on both sides by a floor from the value's scale::

    accepted_i = [low_i - m_i, high_i + m_i],   m_i = tolerance * max(1, |centre_i|),   centre_i = (low_i + high_i) / 2

``tolerance`` is the file's ``observation_tolerance`` (set at export, ``DEFAULT_OBSERVATION_TOLERANCE`` = 0.05 for
files without one), or ``SafetyConfig.obs_range_tolerance``: in the observation's units for values of magnitude
up to 1 (Fetch positions in m, angles in rad), relative beyond. Sensor noise and bias of the size the shipped
profiles model (std <= 0.005 and <= 0.004) stay ~8 std inside it; a disconnected sensor, a unit mix-up or a
value 10x the range does not. A value between the training range and the accepted one is a near miss: counted
(``OBS_NEAR_MISS``, in the telemetry) so a drifting sensor shows up long before it trips the check.

Values are checked as float64, before the cast to the model's float32, so a value beyond the float32 range is
reported with its real value (not as inf) and never reaches the model.

``Controller`` (runtime.py) owns one ``SafetyLayer`` and calls it on every ``act``; this file holds the
checks, their counters and the held action, and nothing else. numpy and the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np

from policies_export.metadata import DEFAULT_OBSERVATION_TOLERANCE, PolicyMetadata

SafeAction = Literal["hold", "zero"]
SAFE_ACTIONS: tuple[str, ...] = ("hold", "zero")

# Observations without a recorded range are still checked for overflow: a float32 cast turns anything beyond
# this into inf, and inf must not pass as "in range".
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class Intervention(StrEnum):
    """Why the safety layer changed or replaced an action, or (``OBS_NEAR_MISS``, a notice) what it counted
    without changing anything; the keys of the intervention counters."""

    ESTOP = "estop"
    SLOW_READ = "slow_read"
    STALE_OBS = "stale_obs"
    NONFINITE_OBS = "nonfinite_obs"
    OBS_OUT_OF_RANGE = "obs_out_of_range"
    OBS_NEAR_MISS = "obs_near_miss"
    NONFINITE_ACTION = "nonfinite_action"
    ACTION_CLIPPED = "action_clipped"
    RATE_LIMITED = "rate_limited"
    ROBOT_ERROR = "robot_error"


FALLBACKS: frozenset[Intervention] = frozenset(Intervention) - {
    Intervention.ACTION_CLIPPED,
    Intervention.RATE_LIMITED,
    Intervention.OBS_NEAR_MISS,
}
"""Interventions that replace the policy's action with the safe action (the others only change it, or, a near
miss, only count)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Knobs of the safety layer. The defaults are what ``Controller.load`` uses: every check on except the
    rate limit, which needs a number only the robot's owner knows."""

    safe_action: SafeAction = "hold"
    """What replaces the policy's action when a check fires: "hold" (last action sent) or "zero" (neutral)."""
    max_action_change: float | None = None
    """Largest change of each action dimension between two ticks, as a fraction of that dimension's range
    (high - low); 0.5 lets a [-1, 1] action move by 1.0 per tick. None (the default) turns it off: a limit
    changes the closed-loop dynamics the policy was trained in (a balancing policy that switches sides
    each tick falls over under 0.5), so set it from the actuator's real limits, not a guess."""
    check_obs_range: bool = True
    """Send the safe action when an observation value lies outside the range recorded at export, widened by the
    tolerance (see the module docstring). Files exported without ranges skip this check."""
    obs_range_tolerance: float | None = None
    """Tolerance of the range check, overriding the file's ``observation_tolerance``; None (the default) uses the
    file's (``DEFAULT_OBSERVATION_TOLERANCE`` for files without one). 0 accepts the training range only."""
    max_stale_ticks: int = 1
    """Ticks in a row the robot's timestamp may repeat (a sensor packet a hair late) before the observation
    counts as stale."""
    max_read_s: float | None = None
    """Longest ``robot.read()`` accepted, in seconds; None means one control period of the policy file."""

    def __post_init__(self) -> None:
        if self.safe_action not in SAFE_ACTIONS:
            raise ValueError(f"safe_action must be one of {SAFE_ACTIONS}, got {self.safe_action!r}")
        if self.max_action_change is not None and not (
            math.isfinite(self.max_action_change) and self.max_action_change > 0
        ):
            raise ValueError(
                "max_action_change must be a positive fraction of the action range, or None to turn the "
                f"rate limit off; got {self.max_action_change}"
            )
        if self.obs_range_tolerance is not None and not (
            math.isfinite(self.obs_range_tolerance) and self.obs_range_tolerance >= 0
        ):
            raise ValueError(
                f"obs_range_tolerance must be a finite number >= 0 (or None for the file's), got {self.obs_range_tolerance}"
            )
        if self.max_stale_ticks < 0:
            raise ValueError(f"max_stale_ticks must be >= 0, got {self.max_stale_ticks}")
        if self.max_read_s is not None and not self.max_read_s > 0:
            raise ValueError(
                f"max_read_s must be > 0 seconds (or None for one control period), got {self.max_read_s}"
            )


def rows_outside(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rows with any value outside [low, high]; NaN counts as outside (every comparison with NaN is False).

    x: (B, dim); low, high: (dim,). Returns (B,) bool.
    """
    return ~((x >= low) & (x <= high)).all(axis=-1)


class SafetyLayer:
    """The checks above, their counters, the held action and the e-stop latch, for one control loop.

    Build it from the policy's metadata; ``Controller`` does (``controller.safety``).
    """

    def __init__(
        self,
        metadata: PolicyMetadata,
        config: SafetyConfig | None = None,
        estop: Callable[[], bool] | None = None,
    ) -> None:
        """estop: polled once per tick; once it returns True the e-stop latches until ``release_estop()``."""
        self.config = config or SafetyConfig()
        self.action_low = _frozen(np.asarray(metadata.action_low, dtype=np.float32))
        self.action_high = _frozen(np.asarray(metadata.action_high, dtype=np.float32))
        # Zero clipped into the bounds: "command nothing" where the bounds allow it.
        self.neutral_action = _frozen(
            np.clip(np.zeros_like(self.action_low), self.action_low, self.action_high)
        )
        self.max_change: np.ndarray | None = None
        if self.config.max_action_change is not None:
            self.max_change = _frozen(self.config.max_action_change * (self.action_high - self.action_low))
        self.max_read_s = self.config.max_read_s or 1.0 / metadata.control_rate_hz

        # Two boxes per observation value, float64: the training range (a value outside it is at least a near
        # miss) and the accepted range (the training range widened by the tolerance), both within the float32
        # range. Without a checked range both are the float32 range. One comparison against the training range
        # catches NaN, inf, near misses and faults; the slow path tells them apart.
        self.has_obs_range = self.config.check_obs_range and metadata.observation_low is not None
        self.obs_tolerance = 0.0
        if self.has_obs_range:
            low = np.asarray(metadata.observation_low, dtype=np.float64)
            high = np.asarray(metadata.observation_high, dtype=np.float64)
            self.obs_tolerance = _tolerance(self.config, metadata)
            margin = self.obs_tolerance * np.maximum(1.0, np.abs((low + high) / 2))
            accept_low, accept_high = low - margin, high + margin
        else:
            low = accept_low = np.full(metadata.obs_dim, -_FLOAT32_MAX)
            high = accept_high = np.full(metadata.obs_dim, _FLOAT32_MAX)
        self.train_low, self.train_high = _frozen(low), _frozen(high)
        """(obs_dim,) float64: the training range; outside it a value is a near miss or a fault."""
        self.obs_low = _frozen(np.clip(accept_low, -_FLOAT32_MAX, _FLOAT32_MAX))
        self.obs_high = _frozen(np.clip(accept_high, -_FLOAT32_MAX, _FLOAT32_MAX))
        """(obs_dim,) float64: the accepted range (training range + tolerance); outside it the safe action."""
        # The batch check sees the graph's input: with history, K observations (each against the boxes above)
        # then M past actions (against the action bounds, no tolerance).
        k, m = metadata.history.observations, metadata.history.actions
        act_low, act_high = self.action_low.astype(np.float64), self.action_high.astype(np.float64)
        self.input_train_low = _frozen(np.concatenate([np.tile(self.train_low, k), np.tile(act_low, m)]))
        self.input_train_high = _frozen(np.concatenate([np.tile(self.train_high, k), np.tile(act_high, m)]))
        self.input_low = _frozen(np.concatenate([np.tile(self.obs_low, k), np.tile(act_low, m)]))
        self.input_high = _frozen(np.concatenate([np.tile(self.obs_high, k), np.tile(act_high, m)]))
        # "desired_goal[2]" for each flat index, so a message says which sensor is off.
        self._value_names = [
            f"{name}[{i}]" for name, size in metadata.observation_layout for i in range(size)
        ]

        self.counts: dict[Intervention, int] = dict.fromkeys(Intervention, 0)
        self.events: list[tuple[Intervention, str]] = []
        """This tick's interventions as (kind, detail); cleared by ``begin_tick``."""
        self.consecutive_fallbacks = 0
        self._held = self.neutral_action.copy()
        self._last_stamp: float | None = None
        self._repeated_stamps = 0
        self._estop_hook = estop
        self._estop_latched = False

    # ------------------------------------------------------------------ lifecycle

    def begin_tick(self) -> None:
        if self.events:
            self.events.clear()

    def reset(self) -> None:
        """Start of an episode: the held action goes back to neutral, the stamp watchdog starts over.
        The e-stop latch stays: only ``release_estop`` clears it."""
        self._held[:] = self.neutral_action
        self._last_stamp = None
        self._repeated_stamps = 0
        self.consecutive_fallbacks = 0

    def engage_estop(self) -> None:
        """Latch the e-stop: every tick sends the neutral action until ``release_estop``."""
        self._estop_latched = True

    def release_estop(self) -> None:
        self._estop_latched = False

    def estop_engaged(self) -> bool:
        if not self._estop_latched and self._estop_hook is not None:
            try:
                pressed = bool(self._estop_hook())
            except Exception:  # a hook that cannot say "not pressed" counts as pressed: fail safe
                pressed = True
            self._estop_latched = pressed
        return self._estop_latched

    # ------------------------------------------------------------------ checks

    def check_observation(
        self, flat: np.ndarray, stamp: float | None = None, read_s: float | None = None
    ) -> tuple[Intervention, str] | None:
        """Checks 1-5 on one observation. flat: (1, obs_dim) float64, as read (before any float32 cast).
        stamp: the robot's timestamp of this observation (None: not checked). read_s: how long robot.read() took
        (None: not checked). Returns the first (kind, detail) that fires, or None when the model may run (a near
        miss is recorded in ``events`` and returns None)."""
        # The stamp is tracked on every tick, also when an earlier check fires.
        stale = None if stamp is None else self._stamp_fault(stamp)
        if self.estop_engaged():
            return Intervention.ESTOP, "e-stop engaged; release_estop() to resume"
        if read_s is not None and read_s > self.max_read_s:
            return (
                Intervention.SLOW_READ,
                f"robot.read() took {read_s * 1e3:.1f} ms > {self.max_read_s * 1e3:.1f} ms",
            )
        if stale is not None:
            return Intervention.STALE_OBS, stale
        if rows_outside(flat, self.train_low, self.train_high)[0]:
            return self._observation_fault(flat[0])
        return None

    def check_action(self, action: np.ndarray) -> np.ndarray:
        """Checks 6-8 on the model's output. action: (act_dim,) float32, changed in place and returned (or the
        safe action). Records the action as the one sent."""
        if rows_outside(action, self.action_low, self.action_high):
            if not np.isfinite(action).all():
                return self.fallback(Intervention.NONFINITE_ACTION, f"model output {action.tolist()}")
            self.record(
                Intervention.ACTION_CLIPPED, f"model output {action.tolist()} clipped into the bounds"
            )
            np.clip(action, self.action_low, self.action_high, out=action)
        if self.max_change is not None and (np.abs(action - self._held) > self.max_change).any():
            self.record(
                Intervention.RATE_LIMITED, f"{action.tolist()} limited to +-{self.max_change.tolist()}"
            )
            np.clip(action, self._held - self.max_change, self._held + self.max_change, out=action)
        self.consecutive_fallbacks = 0
        self._held[:] = action
        return action

    def fallback(self, kind: Intervention, detail: str = "") -> np.ndarray:
        """Count ``kind`` and return the safe action (a fresh array), recording it as the action sent."""
        self.record(kind, detail)
        self.consecutive_fallbacks += 1
        if kind is Intervention.ESTOP or self.config.safe_action == "zero":
            self._held[:] = self.neutral_action
        return self._held.copy()

    # ------------------------------------------------------------------ batch (stateless checks 4-7)

    def check_batch(self, obs: np.ndarray, run: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Checks 4-7 row by row, for vectorised evaluation; no held action, no rate limit, no watchdog.

        obs: (B, input_dim) float64, the graph's inputs (obs_dim without history) before the float32 cast; run:
        the model on the accepted rows, (their inputs (b, input_dim) float32, their indices in obs (b,)) ->
        (b, act_dim) (a recurrent policy takes those rows' states by the indices). Returns (B, act_dim) float32;
        rows that fail get the neutral action. Near misses are counted per row.
        """
        actions = np.empty((obs.shape[0], self.action_low.shape[0]), dtype=np.float32)
        actions[:] = self.neutral_action
        bad_obs = rows_outside(obs, self.input_low, self.input_high)
        nonfinite_obs = ~np.isfinite(obs).all(axis=1)
        near = rows_outside(obs, self.input_train_low, self.input_train_high) & ~bad_obs
        self.counts[Intervention.NONFINITE_OBS] += int(nonfinite_obs.sum())
        self.counts[Intervention.OBS_OUT_OF_RANGE] += int((bad_obs & ~nonfinite_obs).sum())
        self.counts[Intervention.OBS_NEAR_MISS] += int(near.sum())
        rows = np.flatnonzero(~bad_obs)
        if rows.size == 0:
            return actions
        out = run(obs[rows].astype(np.float32), rows)  # accepted rows lie within the float32 range
        finite = np.isfinite(out).all(axis=1)
        self.counts[Intervention.NONFINITE_ACTION] += int((~finite).sum())
        clipped = np.clip(out[finite], self.action_low, self.action_high)
        self.counts[Intervention.ACTION_CLIPPED] += int((clipped != out[finite]).any(axis=1).sum())
        actions[rows[finite]] = clipped
        return actions

    # ------------------------------------------------------------------ internals

    def record(self, kind: Intervention, detail: str = "") -> None:
        """Count an intervention and add it to this tick's events."""
        self.counts[kind] += 1
        self.events.append((kind, detail))

    def _stamp_fault(self, stamp: float) -> str | None:
        """Why the observation stamped ``stamp`` is stale, or None. A repeated stamp is tolerated for
        max_stale_ticks ticks (a packet a hair late); one that goes back is not: that observation is older than
        one already acted on. The newest stamp seen stays the reference."""
        last = self._last_stamp
        if last is not None and stamp < last:
            self._repeated_stamps += 1
            return (
                f"robot timestamp went back from {last:.6f} s to {stamp:.6f} s; a robot's clock must never go back "
                "(check the driver's time())"
            )
        if last is not None and stamp == last:
            self._repeated_stamps += 1
            if self._repeated_stamps > self.config.max_stale_ticks:
                return f"robot timestamp {stamp:.6f} s has not advanced for {self._repeated_stamps} ticks"
            return None
        self._last_stamp = stamp
        self._repeated_stamps = 0
        return None

    def _observation_fault(self, flat: np.ndarray) -> tuple[Intervention, str] | None:
        """Slow path of checks 4-5 on (obs_dim,) float64: say which values are off, for the log and the operator.
        None for a near miss (recorded here; the model may run)."""
        nonfinite = np.flatnonzero(~np.isfinite(flat))
        if nonfinite.size:
            names = ", ".join(f"{self._value_names[i]}={flat[i]}" for i in nonfinite[:4])
            return Intervention.NONFINITE_OBS, f"non-finite observation values: {names}"
        outside = np.flatnonzero((flat < self.obs_low) | (flat > self.obs_high))
        if outside.size == 0:
            i = int(np.flatnonzero((flat < self.train_low) | (flat > self.train_high))[0])
            self.record(Intervention.OBS_NEAR_MISS, f"{self._range_str(flat, i)}, within the tolerance")
            return None
        names = ", ".join(self._range_str(flat, i) for i in outside[:4])
        more = f" (+{outside.size - 4} more)" if outside.size > 4 else ""
        if not self.has_obs_range:
            return Intervention.OBS_OUT_OF_RANGE, f"observation beyond the float32 range the policy takes: {names}{more}"
        return Intervention.OBS_OUT_OF_RANGE, (
            f"observation outside the training range: {names}{more} "
            f"(tolerance {self.obs_tolerance:g} x max(1, |centre|))"
        )

    def _range_str(self, flat: np.ndarray, i: int) -> str:
        """``"goal[1]=-1.5 outside [-1, 1]"``: value i against its training range."""
        return f"{self._value_names[i]}={flat[i]:.4g} outside [{self.train_low[i]:.4g}, {self.train_high[i]:.4g}]"


def _tolerance(config: SafetyConfig, metadata: PolicyMetadata) -> float:
    """The range check's tolerance: the config's override, else the file's, else the default."""
    if config.obs_range_tolerance is not None:
        return config.obs_range_tolerance
    if metadata.observation_tolerance is not None:
        return metadata.observation_tolerance
    return DEFAULT_OBSERVATION_TOLERANCE


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr
