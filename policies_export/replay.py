"""A robot that replays recorded observations from a log and records the actions it is sent.

Use it to run a policy on the robot computer against what the robot saw (a bench test before enabling
motors), to reproduce a field incident from its telemetry, or in tests.

Log formats:

- JSONL: one JSON object per line with ``"obs"`` (a list of obs_dim numbers, or an object keyed by layout
  name) and optionally ``"t"`` (the observation's timestamp, seconds). Lines without ``"obs"`` (the
  ``"summary"`` or ``"event"`` lines of a telemetry file) are skipped, so ``--telemetry`` output replays
  as is.
  NaN / Infinity are accepted, so recorded sensor faults replay too.
- NPZ: an array ``obs`` of shape (T, obs_dim) and optionally ``t`` of shape (T,).

Records without a timestamp get their index as one (0, 1, 2, ...), which advances as the watchdog expects.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from policies_export.errors import LogFileError
from policies_export.robot import Observation, RobotStopped

_FORMAT_HELP = 'each line a JSON object like {"t": 0.04, "obs": [...]} (see policies_export/replay.py)'


class ReplayRobot:
    """Feeds the recorded observations in order; ``read`` raises ``RobotStopped`` after the last one."""

    def __init__(self, observations: list[Observation], stamps: list[float], source: str = "<log>") -> None:
        """observations: T observations (flat vectors or dicts); stamps: T timestamps in seconds."""
        if len(observations) != len(stamps):
            raise LogFileError(f"{source}: {len(observations)} observations but {len(stamps)} timestamps")
        if not observations:
            raise LogFileError(f"{source}: log holds no observations; record one with --telemetry FILE")
        self.source = source
        self._observations = observations
        self._stamps = stamps
        self._next = 0
        self._stamp = stamps[0]
        self.actions: list[np.ndarray] = []
        """Every action applied, in order (copies)."""

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayRobot:
        """Read a ``.jsonl`` or ``.npz`` log; raises ``LogFileError`` naming the file, line and fix."""
        path = Path(path)
        if not path.is_file():
            raise LogFileError(f"{path}: no such log file; pass a .jsonl or .npz log (replay:PATH)")
        if path.suffix == ".npz":
            return cls._from_npz(path)
        return cls._from_jsonl(path)

    def read(self) -> Observation:
        if self._next >= len(self._observations):
            raise RobotStopped(f"{self.source}: end of log after {len(self._observations)} observations")
        obs = self._observations[self._next]
        self._stamp = self._stamps[self._next]
        self._next += 1
        return obs

    def apply(self, action: np.ndarray) -> None:
        self.actions.append(np.array(action, dtype=np.float32, copy=True))

    def time(self) -> float:
        return self._stamp

    # ------------------------------------------------------------------ readers

    @classmethod
    def _from_jsonl(cls, path: Path) -> ReplayRobot:
        observations: list[Observation] = []
        stamps: list[float] = []
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                try:
                    record = json.loads(line)
                except ValueError as err:
                    raise LogFileError(f"{where}: not JSON ({err}); {_FORMAT_HELP}") from None
                if not isinstance(record, dict):
                    raise LogFileError(
                        f"{where}: expected a JSON object, got {type(record).__name__}; {_FORMAT_HELP}"
                    )
                if "obs" not in record:
                    continue  # telemetry summary / event lines
                obs = record["obs"]
                if isinstance(obs, dict):
                    observations.append({name: np.asarray(v, dtype=np.float64) for name, v in obs.items()})
                elif isinstance(obs, list):
                    observations.append(np.asarray(obs, dtype=np.float64))
                else:
                    raise LogFileError(
                        f"{where}: 'obs' must be a list or an object, got {obs!r}; {_FORMAT_HELP}"
                    )
                stamp = record.get("t", float(len(stamps)))
                if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
                    raise LogFileError(f"{where}: 't' must be a finite number of seconds, got {stamp!r}")
                stamps.append(float(stamp))
        return cls(observations, stamps, source=str(path))

    @classmethod
    def _from_npz(cls, path: Path) -> ReplayRobot:
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as err:  # zipfile / numpy raise several unrelated types for a damaged file
            raise LogFileError(
                f"{path}: not a readable .npz file ({err}); save one with np.savez(path, obs=..., t=...)"
            ) from None
        with data:
            if "obs" not in data.files:
                raise LogFileError(
                    f"{path}: has arrays {data.files}, expected 'obs' (T, obs_dim) and optionally 't' (T,)"
                )
            obs = np.asarray(data["obs"], dtype=np.float64)
            if obs.ndim != 2:
                raise LogFileError(f"{path}: 'obs' has shape {obs.shape}, expected (T, obs_dim)")
            stamps = (
                np.asarray(data["t"], dtype=np.float64)
                if "t" in data.files
                else np.arange(len(obs), dtype=np.float64)
            )
        if stamps.shape != (len(obs),):
            raise LogFileError(
                f"{path}: 't' has shape {stamps.shape}, expected ({len(obs)},), one per observation"
            )
        return cls(list(obs), stamps.tolist(), source=str(path))
