"""A robot that replays recorded observations from a log and records the actions it is sent.

Use it to run a policy on the robot computer against what the robot saw (a bench test before enabling
motors), to reproduce a field incident from its telemetry, or in tests.

Log formats:

- JSONL (UTF-8 text): one JSON object per line with ``"obs"`` (a list of obs_dim numbers, or an object keyed
  by layout name, each value a number or a list of numbers) and optionally ``"t"`` (the observation's timestamp,
  seconds). Lines without ``"obs"`` (the ``"summary"`` or ``"event"`` lines of a telemetry file) and lines
  with ``"obs": null`` (telemetry of a tick whose ``read()`` failed: nothing was observed) are skipped, so
  ``--telemetry`` output replays as is.
- NPZ: an array ``obs`` of shape (T, obs_dim) and optionally ``t`` of shape (T,), real numbers.

A log is timed when any record has ``t``; then every record must (a record without one is an error at its line).
An untimed log's records get their index as a timestamp (0, 1, 2, ...), which advances as the watchdog expects.
What a faulty robot sent replays as it was: NaN / Infinity (JSONL ``NaN``, ``Infinity``), values beyond float32,
timestamps that repeat or go back; the safety layer names each at its tick. Anything that is not such a log
(binary content, strings where numbers belong) is a ``LogFileError`` naming the file and the line.
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
        stamps: list[float | None] = []
        timed_line = untimed_line = None  # the first record with / without "t"
        with path.open("rb") as f:  # bytes: a binary file is reported at its line, not as a decode traceback
            for line_no, raw in enumerate(f, start=1):
                where = f"{path}:{line_no}"
                record = _json_record(raw, where)
                if record is None or record.get("obs") is None:
                    continue  # blank, telemetry summary / event line, or a tick whose read() failed
                observations.append(_observation(record["obs"], where))
                stamp = record.get("t")
                if stamp is None:
                    untimed_line = untimed_line or line_no
                else:
                    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
                        raise LogFileError(f"{where}: 't' must be a finite number of seconds, got {stamp!r}")
                    timed_line = timed_line or line_no
                stamps.append(None if stamp is None else float(stamp))
        if timed_line is not None and untimed_line is not None:
            raise LogFileError(
                f"{path}:{untimed_line}: record has no 't', but the log is timed (line {timed_line} has one); give "
                "every record its timestamp, or none (they are then replayed by index)"
            )
        if timed_line is None:
            stamps = [float(i) for i in range(len(observations))]
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
            obs = _npz_numbers(data, "obs", path)
            if obs.ndim != 2:
                raise LogFileError(f"{path}: 'obs' has shape {obs.shape}, expected (T, obs_dim)")
            stamps = _npz_numbers(data, "t", path) if "t" in data.files else np.arange(len(obs), dtype=np.float64)
        if stamps.shape != (len(obs),):
            raise LogFileError(
                f"{path}: 't' has shape {stamps.shape}, expected ({len(obs)},), one per observation"
            )
        if not np.isfinite(stamps).all():
            i = int(np.flatnonzero(~np.isfinite(stamps))[0])
            raise LogFileError(f"{path}: t[{i}] = {stamps[i]}; timestamps must be finite numbers of seconds")
        return cls(list(obs), stamps.tolist(), source=str(path))


def _json_record(raw: bytes, where: str) -> dict | None:
    """One JSONL line -> its object, None for a blank line; LogFileError naming ``where`` otherwise."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LogFileError(
            f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}): a binary file? "
            f"A replay log is a .jsonl text file or an .npz archive; {_FORMAT_HELP}"
        ) from None
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except ValueError as err:
        raise LogFileError(f"{where}: not JSON ({err}); {_FORMAT_HELP}") from None
    if not isinstance(record, dict):
        raise LogFileError(f"{where}: expected a JSON object, got {type(record).__name__}; {_FORMAT_HELP}")
    return record


def _observation(obs: object, where: str) -> Observation:
    """A record's "obs": a flat list -> (n,) float64, an object -> {name: float64 values}."""
    if isinstance(obs, dict):
        return {name: _numbers(values, f"{where}: 'obs'[{name!r}]") for name, values in obs.items()}
    if isinstance(obs, list):
        return _numbers(obs, f"{where}: 'obs'")
    raise LogFileError(f"{where}: 'obs' must be a list or an object, got {obs!r}; {_FORMAT_HELP}")


def _numbers(values: object, what: str) -> np.ndarray:
    """A JSON number or flat list of numbers -> float64 array (NaN, Infinity and values beyond float32 kept)."""
    items = values if isinstance(values, list) else [values]
    for i, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, int | float):
            at = f"[{i}]" if isinstance(values, list) else ""
            raise LogFileError(f"{what}{at} is {v!r}, expected a number; {_FORMAT_HELP}")
    return np.asarray(values, dtype=np.float64)


def _npz_numbers(data: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    """Array ``name`` of the archive as float64; LogFileError for strings, objects or an unreadable member."""
    try:
        array = data[name]
    except Exception as err:  # object arrays need pickle (refused), a damaged member raises zip/zlib errors
        raise LogFileError(f"{path}: array '{name}' cannot be read ({err}); save numbers with np.savez") from None
    if array.dtype.kind not in "fiu":
        raise LogFileError(f"{path}: array '{name}' holds {array.dtype} values, expected numbers (float or int)")
    return array.astype(np.float64)
