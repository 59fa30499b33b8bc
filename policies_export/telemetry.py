"""What the control loop did, tick by tick and in sum.

Per tick (only when a path is given), one JSON line::

    {"tick": 12, "t": 0.48, "wall_s": 0.4801, "obs": [...], "action": [...], "latency_us": 14.2,
     "lateness_us": 61.0, "interventions": [["rate_limited", "..."]]}

``t`` is the robot's timestamp of the observation, so a telemetry file replays as a log (replay.py).
``latency_us`` is ``Controller.act``: observation checks + inference + safety. ``lateness_us`` is how late the
tick started against its deadline (the jitter). Episode ends and the stop are ``{"event": ...}`` lines,
and the last line is ``{"summary": {...}}``, the same dict ``summary()`` returns:

    ticks, episodes, duration_s, rate_hz (target; None unthrottled), achieved_rate_hz,
    latency_us {p50, p99, max}, deadline_misses, jitter_us {p50, p99, max}, interventions {kind: n},
    fallbacks, stop_reason, message
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from policies_export.robot import Observation
from policies_export.safety import FALLBACKS, Intervention


class Telemetry:
    """Accumulates per-tick figures for the summary and, given a path, writes the JSONL log."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8") if self.path is not None else None
        self._latency_s: list[float] = []
        self._lateness_s: list[float] = []
        self.deadline_misses = 0
        self.episodes = 0
        self.interventions: dict[str, int] = dict.fromkeys(Intervention, 0)

    def tick(
        self,
        tick: int,
        stamp: float | None,
        wall_s: float,
        obs: Observation | None,
        action: np.ndarray,
        latency_s: float | None,
        lateness_s: float,
        events: list[tuple[Intervention, str]],
    ) -> None:
        """Record one tick. latency_s: None when the model did not run (robot error)."""
        if latency_s is not None:
            self._latency_s.append(latency_s)
        self._lateness_s.append(lateness_s)
        for kind, _ in events:
            self.interventions[kind] += 1
        if self._file is not None:
            self._write(
                {
                    "tick": tick,
                    "t": stamp,
                    "wall_s": round(wall_s, 6),
                    "obs": _jsonable(obs),
                    "action": action.tolist(),
                    "latency_us": None if latency_s is None else round(latency_s * 1e6, 2),
                    "lateness_us": round(lateness_s * 1e6, 2),
                    "interventions": [[kind.value, detail] for kind, detail in events],
                }
            )

    def event(self, name: str, **fields: Any) -> None:
        """A non-tick line: ``{"event": name, ...fields}`` (episode ends, the stop)."""
        if name == "episode_end":
            self.episodes += 1
        if self._file is not None:
            self._write({"event": name, **fields})

    def summary(
        self, stop_reason: str, message: str, duration_s: float, rate_hz: float | None
    ) -> dict[str, Any]:
        """The end summary; written as the last line and the file closed. See the module docstring."""
        ticks = len(self._lateness_s)
        summary = {
            "ticks": ticks,
            "episodes": self.episodes,
            "duration_s": round(duration_s, 6),
            "rate_hz": rate_hz,
            "achieved_rate_hz": round(ticks / duration_s, 3) if duration_s > 0 else None,
            "latency_us": _percentiles(self._latency_s),
            "deadline_misses": self.deadline_misses,
            "jitter_us": _percentiles(self._lateness_s if rate_hz is not None else []),
            "interventions": {kind.value: n for kind, n in self.interventions.items()},
            "fallbacks": sum(self.interventions[kind] for kind in FALLBACKS),
            "stop_reason": stop_reason,
            "message": message,
        }
        if self._file is not None:
            self._write({"summary": summary})
            self.close()
        return summary

    def latencies_us(self) -> np.ndarray:
        """Every ``Controller.act`` latency so far, (ticks,) in microseconds."""
        return np.asarray(self._latency_s, dtype=np.float64) * 1e6

    def lateness_us(self) -> np.ndarray:
        """How late each tick started against its deadline so far, (ticks,) in microseconds (0 unthrottled)."""
        return np.asarray(self._lateness_s, dtype=np.float64) * 1e6

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record) + "\n")


def _percentiles(values_s: list[float]) -> dict[str, float | None]:
    """{p50, p99, max} in microseconds; None when there are no values."""
    if not values_s:
        return {"p50": None, "p99": None, "max": None}
    us = np.asarray(values_s, dtype=np.float64) * 1e6
    p50, p99 = np.percentile(us, [50, 99])
    return {"p50": round(float(p50), 2), "p99": round(float(p99), 2), "max": round(float(us.max()), 2)}


def _jsonable(obs: Observation | None) -> list[float] | dict[str, list[float]] | None:
    if obs is None:
        return None
    if isinstance(obs, Mapping):
        return {name: np.asarray(value, dtype=np.float64).tolist() for name, value in obs.items()}
    return np.asarray(obs, dtype=np.float64).tolist()
