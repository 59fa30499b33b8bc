"""The self-description an exported policy carries: ``metadata_props["robopg"]`` holds one JSON document.

Written by ``robopg export`` (via ``PolicyMetadata(...).to_json()``), read by ``Controller.load``
(via ``PolicyMetadata.from_json``). The JSON document, format version 1::

    {
      "format_version": 1,
      "task": "FetchReachDense-v4",
      "algorithm": "ppo",
      "observation_layout": [["observation", 25], ["achieved_goal", 3], ["desired_goal", 3]],
      "action_low": [-1.0, -1.0, -1.0, -1.0],
      "action_high": [1.0, 1.0, 1.0, 1.0],
      "control_rate_hz": 25.0,
      "training_steps": 50000,
      "seed": 0,
      "randomization": {...the randomisation spec as data...},
      "robopg_version": "0.1.0",
      "parity_max_abs_diff": 3.2e-07,
      "exported_at": "2025-01-31T12:00:00+00:00",
      "observation_low": [0.41, ...],       (optional: obs_dim values, see below)
      "observation_high": [2.29, ...],
      "observation_tolerance": 0.05,        (optional, see below)
      "history": {"observations": 3, "actions": 2}   (optional, see below)
      "randomization_active": ["object_mass", ...]    (optional, see below)
      "preset": "fetch-push"                           (optional, see below)
      "sha256": "9f2c...64 hex digits"                 (optional, see below)
      "recurrence": {"kind": "lstm", "layers": 1, "hidden_size": 128,
                     "inputs": ["h_in", "c_in"], "outputs": ["h_out", "c_out"],
                     "shape": [1, "batch", 128], "reset": "zeros at an episode's start"}   (optional, see below)
    }

``observation_low`` / ``observation_high`` (optional, added without a version bump) are the range of each flat
observation value the policy was trained on; the runtime's safety layer flags observations outside it. Files
without them load, and the range check is then off.

``observation_tolerance`` (optional, added without a version bump; export's ``--obs-tolerance``): how far a value
may lie outside that range before the safety layer rejects it, as a fraction of the value's scale: value i is
accepted within ``[low_i - m_i, high_i + m_i]``, ``m_i = observation_tolerance * max(1, |centre_i|)``, centre the
middle of its range (safety.py says why). Files without it get ``DEFAULT_OBSERVATION_TOLERANCE``.

``history`` (optional, added without a version bump): the graph's input is not one observation but the last K
observations and the last M actions sent, newest last in each part (``envs/history.py`` builds it in training,
``Controller.act`` on the robot): ``K * obs_dim + M * act_dim`` values. The robot still sends one observation
per tick. Files without it have no history (K = 1, M = 0); the key is written only when there is one.

``randomization_active`` (optional, added without a version bump): the parameters of the ``randomization`` spec
that had a target on the task, so were actually varied in training (what ``info["randomization"]`` reported), in
spec order; e.g. ``object_mass`` is in the default spec but inactive on FetchReach. None in older files.

``preset`` (optional, added without a version bump): the name of the training recipe (``robopg train --preset``)
the run started from; absent when it started from none.

``averaged_steps`` (optional, added without a version bump): the policy's weights are the mean of those of the
run's checkpoints at these training steps, oldest first (``robopg export --average-last K``); ``training_steps`` is
the newest. Absent when the file holds one checkpoint's weights.

``sha256`` (optional, added without a version bump): the file's integrity digest, written by ``robopg export`` and
checked by ``Controller.load`` (``policies_export/integrity.py`` defines what it covers). Files without it load
with a ``PolicyFileWarning``.

``recurrence`` (optional, added without a version bump): the policy is recurrent (``robopg train --recurrent``).
Besides ``obs`` the graph takes its state, one float32 input per name in ``inputs`` (an LSTM: ``h_in`` and ``c_in``,
a GRU: ``h_in``), each of ``shape`` ``[layers, batch, hidden_size]``, and returns ``action`` and the next state
under the names in ``outputs`` (``h_out``, ``c_out``), same shapes. ``reset`` is the rule training followed: the
state is zeros at an episode's start; between ticks of one episode the next state is fed back. ``Controller`` holds
the state (runtime.py says what a safe-action tick does to it). Files without it are feed-forward.

Keys not listed above are ignored, so a later robopg may add fields without bumping the format
version; removing or changing the meaning of a field needs ``FORMAT_VERSION + 1``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from importlib import metadata as _dist_metadata
from typing import Any

from policies_export.errors import PolicyFileError

FORMAT_VERSION = 1
"""Version of the metadata document this code writes."""

SUPPORTED_FORMAT_VERSIONS: tuple[int, ...] = (FORMAT_VERSION,)
"""Versions this runtime reads."""

METADATA_KEY = "robopg"
"""Key in the ONNX ``metadata_props`` that holds the JSON document."""

DEFAULT_OBSERVATION_TOLERANCE = 0.05
"""Tolerance of the observation range check for files that do not set one (and export's default): 0.05 units of
margin on each side for values of magnitude up to 1, 5% of the magnitude beyond. The shipped reality profiles add
sensor noise of std <= 0.005 and a per-episode bias of std <= 0.004: together std 0.0064, so 0.05 is ~8 std."""

_REEXPORT_FIX = "re-export the policy with `robopg export RUN_DIR --out FILE`"


@dataclass(frozen=True)
class History:
    """What the policy's input holds besides the current observation (JSON: ``{"observations": K, "actions": M}``)."""

    observations: int = 1
    """K >= 1: the last K observations, oldest first (1: the current observation only)."""
    actions: int = 0
    """M >= 0: the last M actions sent to the robot, oldest first (0: none)."""

    def __post_init__(self) -> None:
        _check_int("history.observations", self.observations)
        _check_int("history.actions", self.actions)
        if self.observations < 1:
            raise PolicyFileError(f"metadata history.observations must be >= 1, got {self.observations}")
        if self.actions < 0:
            raise PolicyFileError(f"metadata history.actions must be >= 0, got {self.actions}")

    @property
    def stacked(self) -> bool:
        """True when the input is more than the current observation."""
        return self != History()

    def to_dict(self) -> dict[str, int]:
        return {"observations": self.observations, "actions": self.actions}


RESET_RULE = "zeros at an episode's start"
"""The only reset rule robopg trains with, and so the only one this runtime implements."""

RECURRENT_STATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lstm": (("h_in", "c_in"), ("h_out", "c_out")),
    "gru": (("h_in",), ("h_out",)),
}
"""The state inputs and outputs robopg export names for each recurrent kind (the count is what the kind fixes)."""


@dataclass(frozen=True)
class Recurrence:
    """The graph's recurrent state (JSON: see the module docstring); ``Recurrence.standard(kind, layers, hidden)``
    is what robopg export writes."""

    kind: str
    """``"lstm"`` (state h and c) or ``"gru"`` (state h)."""
    layers: int
    """Stacked recurrent layers, >= 1: the first dimension of each state tensor."""
    hidden_size: int
    """Units per layer, >= 1: the last dimension of each state tensor."""
    inputs: tuple[str, ...]
    """Graph input names of the state, in the kind's order (h, then c)."""
    outputs: tuple[str, ...]
    """Graph output names of the next state, in the same order."""
    reset: str = RESET_RULE
    """When the state starts over, and how: ``RESET_RULE``, the only rule this runtime implements."""

    def __post_init__(self) -> None:
        if self.kind not in RECURRENT_STATES:
            raise PolicyFileError(f"metadata recurrence.kind must be one of {sorted(RECURRENT_STATES)}, got {self.kind!r}")
        for name in ("layers", "hidden_size"):
            _check_int(f"recurrence.{name}", getattr(self, name))
            if getattr(self, name) < 1:
                raise PolicyFileError(f"metadata recurrence.{name} must be >= 1, got {getattr(self, name)}")
        count = len(RECURRENT_STATES[self.kind][0])
        for field in ("inputs", "outputs"):
            names = getattr(self, field)
            if not isinstance(names, list | tuple) or len(names) != count:
                raise PolicyFileError(
                    f"metadata recurrence.{field} must name the {count} state tensor(s) of a {self.kind}, got {names!r}"
                )
            for i, name in enumerate(names):
                _check_str(f"recurrence.{field}[{i}]", name)
            object.__setattr__(self, field, tuple(names))
        names = [*self.inputs, *self.outputs]
        if len(set(names)) != len(names) or {"obs", "action", "action_probe"} & set(names):
            raise PolicyFileError(f"metadata recurrence names {names} must be distinct from each other and from "
                                  "obs, action and action_probe")
        if self.reset != RESET_RULE:
            raise PolicyFileError(f"metadata recurrence.reset is {self.reset!r}; this runtime implements only "
                                  f"{RESET_RULE!r}. Upgrade robopg on the robot")

    @classmethod
    def standard(cls, kind: str, layers: int, hidden_size: int) -> Recurrence:
        """The recurrence robopg export writes for a ``kind`` policy (state names from ``RECURRENT_STATES``)."""
        inputs, outputs = RECURRENT_STATES[kind]
        return cls(kind=kind, layers=layers, hidden_size=hidden_size, inputs=inputs, outputs=outputs)

    @property
    def shape(self) -> tuple[int | str, int | str, int | str]:
        """Each state tensor's shape: ``(layers, "batch", hidden_size)``."""
        return (self.layers, "batch", self.hidden_size)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layers": self.layers, "hidden_size": self.hidden_size,
                "inputs": list(self.inputs), "outputs": list(self.outputs), "shape": list(self.shape),
                "reset": self.reset}


@dataclass(frozen=True)
class PolicyMetadata:
    """Everything the robot side needs to know about a policy, beyond the graph itself.

    Field types and constraints are checked at construction, so an exporter cannot write, and a
    runtime cannot load, metadata that disagrees with itself.
    """

    format_version: int
    """Version of this document's format; must be in ``SUPPORTED_FORMAT_VERSIONS``."""
    task: str
    """Gymnasium id the policy was trained on, e.g. ``"FetchReachDense-v4"``."""
    algorithm: str
    """Training algorithm, e.g. ``"ppo"``."""
    observation_layout: tuple[tuple[str, int], ...]
    """Named fields of the flat observation, in order: ``(("observation", 25), ("achieved_goal", 3), ...)``."""
    action_low: tuple[float, ...]
    """Lower action bound per action dimension (finite)."""
    action_high: tuple[float, ...]
    """Upper action bound per action dimension (finite, >= action_low)."""
    control_rate_hz: float
    """Rate the policy was trained to be called at (env steps per second)."""
    training_steps: int
    """Environment steps of training behind this policy."""
    seed: int
    """Training seed."""
    randomization: dict
    """The domain-randomisation spec used in training, as a JSON object."""
    robopg_version: str
    """robopg version that exported the file."""
    parity_max_abs_diff: float
    """Max abs action difference torch vs onnxruntime, measured at export."""
    exported_at: str
    """Export time, ISO 8601."""
    observation_low: tuple[float, ...] | None = None
    """Low end of the training range of each flat observation value, (obs_dim,); None in older files.
    ``robopg export`` writes the normaliser's mean - clip * std (robopg/export.py says why)."""
    observation_high: tuple[float, ...] | None = None
    """High end of the training range of each flat observation value, (obs_dim,); None in older files."""
    observation_tolerance: float | None = None
    """Tolerance of the range check beyond [observation_low, observation_high] (see the module docstring), >= 0;
    None in older files, which get ``DEFAULT_OBSERVATION_TOLERANCE``."""
    history: History = dataclasses.field(default_factory=History)
    """Observations and past actions the graph's input stacks (see the module docstring); none in older files.
    A JSON object ``{"observations": K, "actions": M}`` is accepted and turned into ``History``."""
    randomization_active: tuple[str, ...] | None = None
    """Names of the spec's parameters the task had a target for (varied in training), spec order; None in older
    files."""
    preset: str | None = None
    """The ``robopg train --preset`` recipe the run started from, None when none (and in older files)."""
    averaged_steps: tuple[int, ...] | None = None
    """Training steps of the checkpoints whose weights this policy averages, oldest first (``robopg export
    --average-last``); None for one checkpoint's weights (and in older files)."""
    recurrence: Recurrence | None = None
    """The graph's recurrent state (see the module docstring), None for a feed-forward policy (and in older files).
    A JSON object as written by ``Recurrence.to_dict`` is accepted and turned into ``Recurrence``."""
    sha256: str | None = None
    """The file's integrity digest (64 lowercase hex digits, integrity.py), None in older files. On metadata that
    export has not stamped yet it is ``integrity.PLACEHOLDER``."""

    def __post_init__(self) -> None:
        # Normalise containers (lists from JSON or from the exporter) to tuples, checking types as we go.
        _check_int("format_version", self.format_version)
        _check_str("task", self.task)
        _check_str("algorithm", self.algorithm)
        object.__setattr__(self, "observation_layout", _check_layout(self.observation_layout))
        object.__setattr__(self, "action_low", _check_floats("action_low", self.action_low))
        object.__setattr__(self, "action_high", _check_floats("action_high", self.action_high))
        object.__setattr__(self, "control_rate_hz", _check_float("control_rate_hz", self.control_rate_hz))
        _check_int("training_steps", self.training_steps)
        _check_int("seed", self.seed)
        if not isinstance(self.randomization, dict):
            raise PolicyFileError(
                f"metadata field 'randomization' must be a JSON object, got {type(self.randomization).__name__}"
            )
        _check_str("robopg_version", self.robopg_version)
        object.__setattr__(
            self, "parity_max_abs_diff", _check_float("parity_max_abs_diff", self.parity_max_abs_diff)
        )
        _check_str("exported_at", self.exported_at)
        self._check_observation_range()
        if self.observation_tolerance is not None:
            tolerance = _check_float("observation_tolerance", self.observation_tolerance)
            if not (math.isfinite(tolerance) and tolerance >= 0):
                raise PolicyFileError(f"metadata observation_tolerance must be a finite number >= 0, got {tolerance}")
            object.__setattr__(self, "observation_tolerance", tolerance)
        object.__setattr__(self, "history", _check_history(self.history))
        if self.recurrence is not None:
            object.__setattr__(self, "recurrence", _check_recurrence(self.recurrence))
        if self.sha256 is not None:
            _check_str("sha256", self.sha256)
        if self.preset is not None:
            _check_str("preset", self.preset)
        if self.averaged_steps is not None:
            if not isinstance(self.averaged_steps, list | tuple) or len(self.averaged_steps) < 2:
                raise PolicyFileError(
                    f"metadata field 'averaged_steps' must be a list of 2 or more step counts, got {self.averaged_steps!r}"
                )
            for i, step in enumerate(self.averaged_steps):
                _check_int(f"averaged_steps[{i}]", step)
            object.__setattr__(self, "averaged_steps", tuple(self.averaged_steps))
        if self.randomization_active is not None:
            if not isinstance(self.randomization_active, list | tuple):
                raise PolicyFileError(
                    f"metadata field 'randomization_active' must be a list of names, got {self.randomization_active!r}"
                )
            for i, name in enumerate(self.randomization_active):
                _check_str(f"randomization_active[{i}]", name)
            object.__setattr__(self, "randomization_active", tuple(self.randomization_active))

        if len(self.action_low) != len(self.action_high):
            raise PolicyFileError(
                f"metadata has {len(self.action_low)} action_low values but {len(self.action_high)} "
                "action_high values; they must have one value per action dimension"
            )
        if len(self.action_low) == 0:
            raise PolicyFileError("metadata action bounds are empty; a policy needs at least one action")
        for i, (lo, hi) in enumerate(zip(self.action_low, self.action_high, strict=True)):
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise PolicyFileError(
                    f"metadata action bound {i} is [{lo}, {hi}]; bounds must be finite so the runtime can clip"
                )
            if lo > hi:
                raise PolicyFileError(f"metadata action_low[{i}] = {lo} is above action_high[{i}] = {hi}")
        if not (math.isfinite(self.control_rate_hz) and self.control_rate_hz > 0):
            raise PolicyFileError(f"metadata control_rate_hz must be positive, got {self.control_rate_hz}")
        if self.training_steps < 0:
            raise PolicyFileError(f"metadata training_steps must be >= 0, got {self.training_steps}")
        if not (math.isfinite(self.parity_max_abs_diff) and self.parity_max_abs_diff >= 0):
            raise PolicyFileError(
                f"metadata parity_max_abs_diff must be a finite number >= 0, got {self.parity_max_abs_diff}"
            )

    def _check_observation_range(self) -> None:
        low, high = self.observation_low, self.observation_high
        if low is None and high is None:
            return
        if low is None or high is None:
            raise PolicyFileError(
                "metadata has only one of 'observation_low' / 'observation_high'; give both or neither"
            )
        low = _check_floats("observation_low", low)
        high = _check_floats("observation_high", high)
        for field, values in (("observation_low", low), ("observation_high", high)):
            if len(values) != self.obs_dim:
                raise PolicyFileError(
                    f"metadata '{field}' has {len(values)} values, the observation layout has {self.obs_dim} "
                    f"({self.layout_str()})"
                )
        for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise PolicyFileError(
                    f"metadata observation range {i} is [{lo}, {hi}]; it must be finite with low <= high"
                )
        object.__setattr__(self, "observation_low", low)
        object.__setattr__(self, "observation_high", high)

    @property
    def obs_dim(self) -> int:
        """Length of the flat observation: the sum of the layout's field sizes."""
        return sum(size for _, size in self.observation_layout)

    @property
    def act_dim(self) -> int:
        """Number of action dimensions."""
        return len(self.action_low)

    @property
    def input_dim(self) -> int:
        """Length of the graph's input: K * obs_dim + M * act_dim (obs_dim without history)."""
        return self.history.observations * self.obs_dim + self.history.actions * self.act_dim

    def history_str(self) -> str:
        """``"last 3 observations + last 2 actions = 3 x 16 + 2 x 4 = 56 input values, newest last"``."""
        k, m = self.history.observations, self.history.actions
        if not self.history.stacked:
            return "none (the policy's input is the current observation)"
        return (
            f"last {k} observation{'s' * (k > 1)} + last {m} action{'s' * (m != 1)} = "
            f"{k} x {self.obs_dim} + {m} x {self.act_dim} = {self.input_dim} input values, newest last"
        )

    def recurrence_str(self) -> str:
        """``"lstm, 1 layer x 128: state inputs h_in, c_in [1, batch, 128] -> outputs h_out, c_out; zeros at an
        episode's start"``, or that the policy is feed-forward."""
        rec = self.recurrence
        if rec is None:
            return "none (feed-forward: each action depends on this tick's input alone)"
        shape = ", ".join(str(d) for d in rec.shape)
        return (f"{rec.kind}, {rec.layers} layer{'s' * (rec.layers > 1)} x {rec.hidden_size}: state inputs "
                f"{', '.join(rec.inputs)} [{shape}] -> outputs {', '.join(rec.outputs)}; {rec.reset}")

    def randomization_str(self) -> str:
        """The parameters varied in training: the active ones (in files that record them), else the spec's."""
        in_spec = list(self.randomization.get("parameters", self.randomization))
        if self.randomization_active is None:
            return ", ".join(sorted(in_spec)) or "none"
        inactive = len(set(in_spec) - set(self.randomization_active))
        note = f" ({inactive} more in the spec have no target on this task)" if inactive else ""
        return (", ".join(self.randomization_active) or "none") + note

    def layout_str(self) -> str:
        """The layout as ``"observation=25, achieved_goal=3, desired_goal=3"``, for messages."""
        return ", ".join(f"{name}={size}" for name, size in self.observation_layout)

    def to_json(self) -> str:
        """The JSON document stored under ``metadata_props[METADATA_KEY]`` (strict JSON: no NaN/inf)."""
        doc = {
            "format_version": self.format_version,
            "task": self.task,
            "algorithm": self.algorithm,
            "observation_layout": [[name, size] for name, size in self.observation_layout],
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
            "control_rate_hz": self.control_rate_hz,
            "training_steps": self.training_steps,
            "seed": self.seed,
            "randomization": self.randomization,
            "robopg_version": self.robopg_version,
            "parity_max_abs_diff": self.parity_max_abs_diff,
            "exported_at": self.exported_at,
        }
        if self.observation_low is not None:
            # Written only when known, so a file without ranges is byte-for-byte what older robopg wrote.
            doc["observation_low"] = list(self.observation_low)
            doc["observation_high"] = list(self.observation_high)
        if self.observation_tolerance is not None:
            doc["observation_tolerance"] = self.observation_tolerance
        if self.history.stacked:
            doc["history"] = self.history.to_dict()
        if self.randomization_active is not None:
            doc["randomization_active"] = list(self.randomization_active)
        if self.preset is not None:
            doc["preset"] = self.preset
        if self.averaged_steps is not None:
            doc["averaged_steps"] = list(self.averaged_steps)
        if self.recurrence is not None:
            doc["recurrence"] = self.recurrence.to_dict()
        if self.sha256 is not None:
            doc["sha256"] = self.sha256
        return json.dumps(doc, sort_keys=True, allow_nan=False)

    def describe(self) -> str:
        """The document for people: what the robot must send and receive, and where the policy came from."""
        lines = [
            f"task              {self.task} ({self.algorithm}, {self.training_steps} training steps, "
            f"seed {self.seed}" + (f", preset {self.preset}" if self.preset else "") + ")",
            *([f"weights           the mean of {len(self.averaged_steps)} checkpoints, steps "
               f"{self.averaged_steps[0]}..{self.averaged_steps[-1]}"] if self.averaged_steps else []),
            f"control rate      {self.control_rate_hz:g} Hz "
            f"(one action every {1e3 / self.control_rate_hz:.4g} ms)",
            f"observation       {self.obs_dim} values: {self.layout_str()}",
        ]
        ranges = self.observation_low is not None and self.observation_high is not None
        start = 0
        for name, size in self.observation_layout:
            if ranges:
                lows = self.observation_low[start : start + size]
                highs = self.observation_high[start : start + size]
                spans = ", ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(lows, highs, strict=True))
                lines.append(f"  {name:<16}{spans}")
            start += size
        if ranges:
            tolerance = self.observation_tolerance
            source = "set at export" if tolerance is not None else "the runtime's default: not set in this file"
            tolerance = DEFAULT_OBSERVATION_TOLERANCE if tolerance is None else tolerance
            lines.append(
                f"  tolerance       {tolerance:g} x max(1, |centre|) beyond each range before the safety layer "
                f"rejects a value ({source})"
            )
        else:
            lines.append("  (no training ranges in this file: the safety layer's range check is off)")
        bounds = ", ".join(
            f"[{lo:g}, {hi:g}]" for lo, hi in zip(self.action_low, self.action_high, strict=True)
        )
        lines += [
            f"action            {self.act_dim} values, bounds {bounds}",
            f"history           {self.history_str()}",
            f"memory            {self.recurrence_str()}",
            f"parity            max |torch - onnxruntime| = {self.parity_max_abs_diff:.2e} at export",
            f"integrity         {_integrity_str(self.sha256)}",
            f"randomisation     {self.randomization_str()}",
            f"exported          {self.exported_at} by robopg {self.robopg_version} "
            f"(format_version {self.format_version})",
        ]
        return "\n".join(lines)

    @classmethod
    def from_json(cls, text: str, source: str = "<metadata>") -> PolicyMetadata:
        """Parse and validate a metadata document.

        ``source`` (usually the policy file's path) prefixes every error message.
        Raises ``PolicyFileError`` naming the problem and the fix.
        """
        try:
            doc = json.loads(text, parse_constant=_reject_nonstandard_constant)
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            raise PolicyFileError(
                f"{source}: '{METADATA_KEY}' metadata is not valid JSON ({err}); {_REEXPORT_FIX}"
            ) from None
        if not isinstance(doc, dict):
            raise PolicyFileError(
                f"{source}: '{METADATA_KEY}' metadata must be a JSON object, got {type(doc).__name__}; "
                f"{_REEXPORT_FIX}"
            )

        # The version decides which fields to expect, so it is checked before anything else.
        if "format_version" not in doc:
            raise PolicyFileError(
                f"{source}: '{METADATA_KEY}' metadata has no 'format_version' field; {_REEXPORT_FIX}"
            )
        version = doc["format_version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise PolicyFileError(
                f"{source}: metadata field 'format_version' must be an integer, got {version!r}; {_REEXPORT_FIX}"
            )
        if version not in SUPPORTED_FORMAT_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
            raise PolicyFileError(
                f"{source}: policy format_version {version} is not supported; this runtime "
                f"({_runtime_version()}) reads format_version {supported}. Upgrade robopg on the robot, "
                "or re-export the policy with the robopg version installed here"
            )

        missing = [name for name in _REQUIRED_FIELDS if name not in doc]
        if missing:
            raise PolicyFileError(
                f"{source}: '{METADATA_KEY}' metadata is missing field(s) {', '.join(repr(m) for m in missing)}; "
                f"{_REEXPORT_FIX}"
            )
        try:
            return cls(**{name: doc[name] for name in _FIELD_NAMES if name in doc})
        except PolicyFileError as err:
            raise PolicyFileError(f"{source}: {err}; {_REEXPORT_FIX}") from None


_FIELD_NAMES: tuple[str, ...] = tuple(PolicyMetadata.__dataclass_fields__)
_OPTIONAL_FIELDS: frozenset[str] = frozenset(
    {"observation_low", "observation_high", "observation_tolerance", "history", "randomization_active", "preset",
     "averaged_steps", "recurrence", "sha256"}
)
_REQUIRED_FIELDS: tuple[str, ...] = tuple(name for name in _FIELD_NAMES if name not in _OPTIONAL_FIELDS)


def _integrity_str(sha256: str | None) -> str:
    if sha256 is None:
        return "no digest (exported before robopg recorded one: corruption cannot be detected; re-export)"
    return f"sha256 {sha256} (checked when the file was loaded)"


def _runtime_version() -> str:
    try:
        return f"robopg {_dist_metadata.version('robopg')}"
    except _dist_metadata.PackageNotFoundError:
        return "robopg, version unknown"


def _reject_nonstandard_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in strict JSON")


def _check_int(field: str, value: Any) -> None:
    # bool is an int subclass; `true` where a number belongs is a writer bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyFileError(f"metadata field '{field}' must be an integer, got {value!r}")


def _check_float(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyFileError(f"metadata field '{field}' must be a number, got {value!r}")
    return float(value)


def _check_str(field: str, value: Any) -> None:
    if not isinstance(value, str):
        raise PolicyFileError(f"metadata field '{field}' must be a string, got {value!r}")


def _check_floats(field: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, list | tuple):
        raise PolicyFileError(f"metadata field '{field}' must be a list of numbers, got {value!r}")
    return tuple(_check_float(f"{field}[{i}]", v) for i, v in enumerate(value))


def _check_history(value: Any) -> History:
    if isinstance(value, History):
        return value
    if not isinstance(value, dict):
        raise PolicyFileError(
            f"metadata field 'history' must be a JSON object {{\"observations\": K, \"actions\": M}}, got {value!r}"
        )
    unknown = sorted(set(value) - {"observations", "actions"})
    if unknown:
        raise PolicyFileError(f"metadata field 'history' has unknown key(s) {unknown}; it takes observations, actions")
    return History(**value)


def _check_recurrence(value: Any) -> Recurrence:
    if isinstance(value, Recurrence):
        return value
    keys = {"kind", "layers", "hidden_size", "inputs", "outputs", "shape", "reset"}
    if not isinstance(value, dict):
        raise PolicyFileError(f"metadata field 'recurrence' must be a JSON object with keys {sorted(keys)}, got {value!r}")
    unknown, missing = sorted(set(value) - keys), sorted(keys - set(value))
    if unknown or missing:
        raise PolicyFileError(f"metadata field 'recurrence' has unknown key(s) {unknown} / lacks {missing}; it takes "
                              f"{sorted(keys)}")
    recurrence = Recurrence(**{k: v for k, v in value.items() if k != "shape"})
    if value["shape"] != list(recurrence.shape):
        raise PolicyFileError(f"metadata recurrence.shape is {value['shape']!r}, but layers and hidden_size say "
                              f"{list(recurrence.shape)}")
    return recurrence


def _check_layout(value: Any) -> tuple[tuple[str, int], ...]:
    field = "observation_layout"
    if not isinstance(value, list | tuple) or len(value) == 0:
        raise PolicyFileError(
            f"metadata field '{field}' must be a non-empty list of [name, size] pairs, got {value!r}"
        )
    layout: list[tuple[str, int]] = []
    for i, entry in enumerate(value):
        if not (isinstance(entry, list | tuple) and len(entry) == 2):
            raise PolicyFileError(f"metadata field '{field}[{i}]' must be a [name, size] pair, got {entry!r}")
        name, size = entry
        if not isinstance(name, str) or not name:
            raise PolicyFileError(
                f"metadata field '{field}[{i}]' name must be a non-empty string, got {name!r}"
            )
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise PolicyFileError(
                f"metadata field '{field}[{i}]' ({name!r}) size must be a positive integer, got {size!r}"
            )
        if any(name == seen for seen, _ in layout):
            raise PolicyFileError(
                f"metadata field '{field}' names {name!r} twice; field names must be unique"
            )
        layout.append((name, size))
    return tuple(layout)
