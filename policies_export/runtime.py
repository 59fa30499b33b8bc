"""Robot-side policy runtime: load one exported ``.onnx`` file, validate it, and turn observations into
actions, safely.

    controller = Controller.load("policy.onnx")           # raises PolicyFileError if unusable
    controller.reset()                                     # start of an episode
    action = controller.act(obs)                           # (act_dim,) float32, always within bounds

A policy trained with history (``robopg train --obs-history K --action-history M``, ``metadata.history``) still
takes one raw observation per ``act``: the controller keeps the last K observations and the last M actions it
sent and builds the graph's input exactly as training did (``envs/history.py``); ``reset()`` starts it over.

A recurrent policy (``robopg train --recurrent lstm|gru``, ``metadata.recurrence``) carries a state between ticks:
the controller holds it, starts it at zeros after ``load`` and ``reset()`` (training's rule: zeros at an episode's
start; ``run_loop`` resets at every episode boundary it sees), feeds it to the graph with each observation and
keeps the next state the graph returns. The state advances only on ticks where the policy acted: a tick that
sends the safe action (a rejected observation, an e-stop, a robot error, a non-finite model output) leaves it as
it was, so a rejected observation never enters the state and NaN never reaches it; a non-finite next state counts
as a non-finite model output (``Intervention.NONFINITE_ACTION``). Holding rather than stepping on a stand-in input
(the last accepted observation, as the history repeats it) keeps the memory a summary of observations the policy
actually acted on. History and recurrence combine: the memory then runs on the stacked input.

Two kinds of problems, handled differently:

- *Wiring bugs* (observation of the wrong size, unknown or missing dict key) raise ``ObservationError``:
  they are deterministic and must be fixed before the control loop runs.
- *Runtime faults* (NaN/inf or out-of-range observation values, a stale or late observation, a non-finite
  model output, an action outside the bounds or moving too fast, an e-stop) never raise: the safety layer
  (``policies_export/safety.py``, ``controller.safety``) sends the safe action or corrects the action, and
  counts the intervention in ``controller.stats``.

Loading checks, in order: the file exists and onnxruntime parses it; its integrity digest matches
(integrity.py; a file without one loads with a ``PolicyFileWarning``); the metadata is valid; the graph's
input and output shapes agree with it; and the graph's own action range agrees with the metadata's bounds
(``_check_action_bounds``: export adds an overridable ``action_probe`` before the graph's clip, which pushes every
action dimension into the clip when fed +-1e20).

This file checks the file and the observation's wiring and runs the model; every check on values lives in
safety.py, once. Only numpy, onnxruntime and the standard library are imported here: this runs on the robot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from policies_export import integrity
from policies_export.errors import ObservationError, PolicyFileError
from policies_export.metadata import METADATA_KEY, History, PolicyMetadata, Recurrence
from policies_export.robot import Observation
from policies_export.safety import FALLBACKS, Intervention, SafetyConfig, SafetyLayer

INPUT_NAME = "obs"
OUTPUT_NAME = "action"
ACTION_PROBE = "action_probe"
"""Overridable initializer of robopg graphs, (act_dim,) zeros, added to the policy's mean action just before the
graph clips it: fed +-_PROBE_VALUE at load it drives every dimension into the clip, so the graph's own action
range can be compared with the metadata's bounds. A file without it (older or hand-built) skips that check."""
_PROBE_VALUE = 1e20  # far beyond any mean action, far below float32 overflow

_REEXPORT_FIX = "re-export with `robopg export RUN_DIR --out FILE`"


def _session_options() -> ort.SessionOptions:
    """One thread, no spinning: a control tick must not compete with the robot's other real-time work,
    and spinning threads burn a core between ticks for no latency gain at batch 1."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # Errors only: onnxruntime warns at every load that the (deliberately) overridable action_probe is not
    # constant-folded, which is exactly the point of it.
    opts.log_severity_level = 3
    return opts


class Controller:
    """A validated policy plus the safety layer around it. Build with ``Controller.load(path)``.

    One controller serves one control loop: ``act`` reuses a preallocated input buffer and the safety layer
    keeps the held action, so it is not safe to call from several threads at once (load one per loop).
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        metadata: PolicyMetadata,
        path: Path,
        safety: SafetyConfig | None = None,
        estop: Callable[[], bool] | None = None,
    ) -> None:
        """Prefer ``Controller.load``; this assumes ``session`` was already checked against ``metadata``."""
        self.path = path
        self.metadata = metadata
        self.safety = SafetyLayer(metadata, safety, estop)
        self.layout: tuple[tuple[str, int], ...] = metadata.observation_layout
        self.obs_dim: int = metadata.obs_dim
        self.act_dim: int = metadata.act_dim
        self.input_dim: int = metadata.input_dim
        """Length of the graph's input: obs_dim, or K * obs_dim + M * act_dim with history."""
        self.history = metadata.history
        self.action_low = self.safety.action_low
        self.action_high = self.safety.action_high
        self.neutral_action = self.safety.neutral_action

        self._session = session
        self.digest_verified = False
        """True when load checked the file's integrity digest (False: the file has none)."""
        self.bounds_verified = False
        """True when load checked the graph's action range against the metadata (False: no action_probe)."""
        # Preallocated once; act() writes into them instead of building arrays/dicts per tick.
        # _raw_buf: this tick's observation as read, float64, which the safety layer checks (float64, so a value
        # beyond float32 keeps its real value in the message, and casting it never overflows). _obs_buf: the same
        # as the model's float32. _input_buf: the graph's input, the same array as _obs_buf without history.
        self._raw_buf = np.zeros((1, self.obs_dim), dtype=np.float64)
        self._obs_buf = np.empty((1, self.obs_dim), dtype=np.float32)
        self._stacked = self.history.stacked
        self._input_buf = np.zeros((1, self.input_dim), dtype=np.float32) if self._stacked else self._obs_buf
        self._feed = {INPUT_NAME: self._input_buf}
        self._output_names = [OUTPUT_NAME]
        self.recurrence: Recurrence | None = metadata.recurrence
        """The recurrent state the graph carries (None: feed-forward)."""
        self._recurrent = self.recurrence is not None
        self._state: tuple[np.ndarray, ...] = ()
        """This controller's state, one (layers, 1, hidden) float32 array per state input, the arrays the feed holds
        (the model's last outputs, or zeros)."""
        if self.recurrence is not None:
            self._state = self.initial_state(1)
            self._feed.update(zip(self.recurrence.inputs, self._state, strict=True))
            self._output_names += list(self.recurrence.outputs)
        self._field_views: tuple[tuple[str, int, np.ndarray], ...] = tuple(
            (name, size, self._raw_buf[0, start : start + size])
            for name, size, start in _field_offsets(self.layout)
        )
        self._raw_row = self._raw_buf[0]
        self._raw_fields = {name: view for name, _, view in self._field_views}
        """The last raw observation as a dict of views into ``_raw_buf``: what ``warm_up`` replays after dict ticks."""
        self._last_obs: np.ndarray | dict[str, np.ndarray] = self._raw_row
        self._obs_row = self._obs_buf[0]
        self._ticks = 0
        self._frames = _HistoryViews(self._input_buf[0], self.obs_dim, self.act_dim, self.history)
        # Training's action history starts at the bounds' midpoint (envs/history.py), not the safety layer's
        # neutral action (zero clipped into the bounds): the two differ for asymmetric bounds.
        self._midpoint = (self.action_low + self.action_high) / np.float32(2)
        self._last_sent = self._midpoint.copy()
        self._history_started = False
        self._shadow: Controller | None = None  # warm_up's, built on first use

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        safety: SafetyConfig | None = None,
        estop: Callable[[], bool] | None = None,
    ) -> Controller:
        """Open and validate an exported policy file.

        safety: the safety layer's settings (default: ``SafetyConfig()``, every check on).
        estop: polled once per tick; when it returns True the e-stop latches (``safety.release_estop()``).
        Raises ``PolicyFileError`` (naming the file, the problem and the fix) if the file is missing,
        empty, not ONNX or truncated, changed since export (integrity digest), has no robopg metadata, has an
        unsupported format version, or its graph's shapes or action range disagree with the metadata.
        Warns (``PolicyFileWarning``) for a file without a digest.
        """
        path = Path(path)
        if not path.exists():
            raise PolicyFileError(f"{path}: no such file; check the path (relative to {Path.cwd()})")
        if not path.is_file():
            raise PolicyFileError(f"{path}: is not a file; pass the path of the exported .onnx file")
        data = path.read_bytes()
        if not data:
            raise PolicyFileError(f"{path}: file is empty; {_REEXPORT_FIX}")

        # The session is built from the bytes the digest is checked on, so the file cannot change in between.
        # onnxruntime raises its own pybind classes (InvalidProtobuf, InvalidGraph, Fail, ...), which derive
        # from Exception only; any of them means this file cannot run.
        try:
            session = ort.InferenceSession(
                data, sess_options=_session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise PolicyFileError(
                f"{path}: onnxruntime {ort.__version__} cannot load it: file is truncated or not ONNX "
                f"(or needs a newer onnxruntime); {_REEXPORT_FIX} (onnxruntime said: {err})"
            ) from None

        custom = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in custom:
            raise PolicyFileError(
                f"{path}: ONNX file has no '{METADATA_KEY}' metadata, so it was not written by robopg export "
                f"(or the metadata was stripped); {_REEXPORT_FIX}"
            )
        # The digest first: a damaged file is best reported as damaged, not by whatever field the damage hit.
        digest_verified = integrity.check(data, custom[METADATA_KEY], path)
        metadata = PolicyMetadata.from_json(custom[METADATA_KEY], source=str(path))
        _check_graph_signature(session, metadata, path)
        bounds_verified = _check_action_bounds(session, metadata, path)
        controller = cls(session, metadata, path, safety, estop)
        controller.digest_verified, controller.bounds_verified = digest_verified, bounds_verified
        return controller

    # ------------------------------------------------------------------ acting

    def act(self, obs: Observation, *, stamp: float | None = None, read_s: float | None = None) -> np.ndarray:
        """One control tick: observation -> action within bounds, through the safety layer.

        obs: (obs_dim,) flat vector of any real dtype, or a dict keyed by the layout's field names, each
             value of its field's size. One raw observation, also for a policy with history.
        stamp: the robot's timestamp of ``obs`` in seconds (``robot.time()``), for the stale-observation
             watchdog; None skips it. read_s: how long reading ``obs`` took, for the slow-read watchdog.
        Returns: (act_dim,) float32 in [action_low, action_high]; a fresh array the caller may keep. What the
        safety layer did this tick is in ``controller.safety.events``.
        Raises ``ObservationError`` on a shape/key mismatch; never raises on the values themselves.

        With history, every tick advances it by one step: the action sent last tick enters the action history,
        and ``obs`` the observation history if the safety layer accepts it; a tick that sends the safe action
        instead repeats the last accepted observation (a bad value never reaches the policy's input) and its
        safe action is what enters the action history next tick, as it is what the robot received. The first
        accepted observation after ``load``/``reset`` fills the whole observation history.

        A recurrent policy's state advances on the ticks where the policy's action is sent (the module docstring
        says why it holds otherwise).
        """
        if isinstance(obs, Mapping):
            self._fill_from_dict(obs)
            self._last_obs = self._raw_fields
        else:
            self._fill_from_flat(obs)
            self._last_obs = self._raw_row
        self._ticks += 1
        self.safety.begin_tick()

        fault = self.safety.check_observation(self._raw_buf, stamp, read_s)
        if fault is None:  # accepted values lie within the float32 range: the cast cannot overflow
            self._obs_row[:] = self._raw_row
        else:  # the model will not run; cast anyway for last_input, a value beyond float32 becoming inf quietly
            with np.errstate(over="ignore"):
                self._obs_row[:] = self._raw_row
        if self._stacked:
            self._advance_history(accepted=fault is None)
        if fault is not None:
            return self._sent(self.safety.fallback(*fault))
        outputs = self._session.run(self._output_names, self._feed)
        if self._recurrent:
            bad_state = self._advance_state(outputs)
            if bad_state is not None:
                return self._sent(self.safety.fallback(Intervention.NONFINITE_ACTION, bad_state))
        return self._sent(self.safety.check_action(outputs[0][0]))

    def fallback(self, kind: Intervention, detail: str = "") -> np.ndarray:
        """A tick without a usable observation (e.g. the robot adapter raised): the safe action, counted.

        Returns (act_dim,) float32; ``controller.safety.events`` holds (kind, detail). With history, the tick
        advances it as ``act`` does for a rejected observation; a recurrent state holds.
        """
        self._ticks += 1
        self.safety.begin_tick()
        if self._stacked:
            self._advance_history(accepted=False)
        return self._sent(self.safety.fallback(kind, detail))

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """Many policy inputs at once (e.g. vectorised evaluation, export's parity check); stateless: it does
        not touch the held action or the history.

        obs: (B, input_dim) of any real dtype. Without history input_dim = obs_dim: raw observations. With
             history each row is a stacked input as training builds it (``envs/history.py``: K observations,
             then M actions, newest last); to act on one raw observation per tick, use ``act`` (one controller
             per robot, as each keeps its own history).
        Returns: (B, act_dim) float32 within bounds. Rows with a non-finite or out-of-range value (each
        stacked observation against the training range, each stacked action against the bounds) or a
        non-finite model output get the neutral action and are counted; there is no rate limit or watchdog.
        A recurrent policy needs its state with every row: ``act_batch_with_state``.
        """
        if self._recurrent:
            raise ObservationError(
                f"act_batch is stateless, and this policy is recurrent ({self.metadata.recurrence_str()}): use act() "
                "once per tick (one Controller per robot: it holds the state) or act_batch_with_state(obs, state)"
            )
        obs_arr = self._checked_batch(obs)
        batch = np.asarray(obs_arr, dtype=np.float64)  # checked before the float32 cast, as in act()
        self._ticks += batch.shape[0]
        return self.safety.check_batch(
            batch, lambda rows, _index: self._session.run(self._output_names, {INPUT_NAME: rows})[0]
        )

    def act_batch_with_state(
        self, obs: np.ndarray, state: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """A recurrent policy on many inputs with their states at once (vectorised evaluation, export's parity
        check): the caller holds the states; this controller's own state, history and held action are untouched.

        obs: (B, input_dim), as for ``act_batch``. state: one array per ``recurrence.inputs``, each
        (layers, B, hidden) (``initial_state(B)`` for robots whose episode starts now: zeros).
        Returns (actions (B, act_dim) float32, next state (fresh arrays)). Rows that the checks of ``act_batch``
        reject, or whose model output (action or next state) is not finite, get the neutral action and keep
        their state, as ``act`` does.
        """
        if not self._recurrent:
            raise ObservationError("act_batch_with_state is for recurrent policies; this one is feed-forward: "
                                   "use act_batch(obs)")
        batch = np.asarray(self._checked_batch(obs), dtype=np.float64)
        next_state = self._checked_state(state, batch.shape[0])
        names = self.recurrence.inputs

        def run(rows: np.ndarray, index: np.ndarray) -> np.ndarray:
            feed = {INPUT_NAME: rows, **{n: s[:, index] for n, s in zip(names, next_state, strict=True)}}
            action, *states = self._session.run(self._output_names, feed)
            ok = np.isfinite(action).all(axis=1)
            for out in states:
                ok &= np.isfinite(out).all(axis=(0, 2))
            action[~ok] = np.nan  # counted as a non-finite model output: the neutral action, the state kept
            for buf, out in zip(next_state, states, strict=True):
                buf[:, index[ok]] = out[:, ok]
            return action

        self._ticks += batch.shape[0]
        return self.safety.check_batch(batch, run), next_state

    def initial_state(self, batch: int = 1) -> tuple[np.ndarray, ...]:
        """A recurrent policy's state at an episode's start for ``batch`` robots: zeros, one (layers, batch,
        hidden) float32 array per ``recurrence.inputs``; () for a feed-forward policy."""
        if self.recurrence is None:
            return ()
        rec = self.recurrence
        return tuple(np.zeros((rec.layers, batch, rec.hidden_size), dtype=np.float32) for _ in rec.inputs)

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """Copies of this controller's recurrent state, (layers, 1, hidden) each, as the next tick will feed it;
        () for a feed-forward policy."""
        return tuple(s.copy() for s in self._state)

    def _checked_batch(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` as (B, input_dim) of a real dtype, or ObservationError naming the expected shape."""
        obs_arr = np.asarray(obs)
        _check_real_dtype(obs_arr)
        if obs_arr.ndim != 2 or obs_arr.shape[1] != self.input_dim:
            if self._stacked:
                raise ObservationError(
                    f"act_batch obs has shape {obs_arr.shape}, policy expects stacked inputs (B, {self.input_dim}): "
                    f"{self.metadata.history_str()} (layout: {self.metadata.layout_str()}). For raw observations "
                    "use act() once per tick, one Controller per robot: it keeps the history"
                )
            raise ObservationError(
                f"act_batch obs has shape {obs_arr.shape}, policy expects (B, {self.obs_dim}) "
                f"(layout: {self.metadata.layout_str()})"
            )
        return obs_arr

    def _checked_state(self, state: tuple[np.ndarray, ...], batch: int) -> tuple[np.ndarray, ...]:
        """Float32 copies of a caller's recurrent state for ``batch`` rows, or ObservationError naming the shape."""
        rec = self.recurrence
        expected = (rec.layers, batch, rec.hidden_size)
        arrays = tuple(np.asarray(s) for s in state)
        if len(arrays) != len(rec.inputs) or any(a.shape != expected for a in arrays):
            raise ObservationError(
                f"state has shapes {[a.shape for a in arrays]}, policy expects {len(rec.inputs)} array(s) "
                f"({', '.join(rec.inputs)}) of shape {expected}; start from initial_state({batch})"
            )
        for a in arrays:
            _check_real_dtype(a, what="state")
        return tuple(a.astype(np.float32, copy=True) for a in arrays)

    def warm_up(self, ticks: int = 8) -> None:
        """Run ``ticks`` dummy ticks on the last observation and discard them, to bring the tick's code and data
        back into the CPU's caches before a deadline (the paced loop's ``PreciseTiming`` calls it). After 40 ms
        of idling (25 Hz) a tick otherwise takes an order of magnitude longer than back to back
        (scripts/bench_runtime.py).

        The dummy ticks run through a shadow controller: the same onnxruntime session and code path, its own
        buffers, history and safety state, so this controller's state, history and counters are untouched. They
        replay the last observation in the form it came (a dict of fields, or a flat vector), read from this
        controller's buffers, so the path the next tick takes is the one warmed.
        """
        if self._shadow is None:
            self._shadow = Controller(self._session, self.metadata, self.path, self.safety.config)
        for _ in range(ticks):
            self._shadow.act(self._last_obs)

    def reset(self) -> None:
        """Start of an episode: the held action goes back to neutral, the watchdog starts over, the history
        is cleared (the next accepted observation fills it, the action history restarts at the bounds'
        midpoint) and a recurrent state goes back to zeros, as training does at each episode's reset."""
        self.safety.reset()
        self._history_started = False
        for s in self._state:
            s.fill(0.0)

    @property
    def last_input(self) -> np.ndarray:
        """(input_dim,) read-only view of the graph's input as the last tick left it: what the model ran on, or
        on a tick that sent the safe action, the input it would have seen (with history: the last accepted
        observation repeated). It changes with the next tick; copy it to keep it."""
        view = self._input_buf[0].view()
        view.flags.writeable = False
        return view

    @property
    def stats(self) -> dict:
        """Counters since load (not cleared by ``reset``); a snapshot, safe to keep or log.

        ``ticks``: actions produced (act/fallback calls + act_batch / act_batch_with_state rows, excluding calls that
        raised).
        ``interventions``: count per ``Intervention`` kind (safety.py), e.g. ``{"nonfinite_obs": 2, ...}``.
        ``fallbacks``: ticks that sent the safe action instead of the policy's (sum over those kinds).
        ``consecutive_fallbacks``: safe actions since the last policy action, for a watchdog that stops
        the robot after too many in a row.
        """
        counts = self.safety.counts
        return {
            "ticks": self._ticks,
            "interventions": {kind.value: n for kind, n in counts.items()},
            "fallbacks": sum(counts[kind] for kind in FALLBACKS),
            "consecutive_fallbacks": self.safety.consecutive_fallbacks,
        }

    # ------------------------------------------------------------------ internals

    def _sent(self, action: np.ndarray) -> np.ndarray:
        """Remember the action sent this tick: the action history takes it at the next tick."""
        if self._stacked:
            np.copyto(self._last_sent, action)
        return action

    def _advance_state(self, outputs: list[np.ndarray]) -> str | None:
        """After the model ran: keep its next state (``outputs[1:]``) when it and the action are finite. Returns
        what was wrong with a non-finite next state, else None (a non-finite action is check_action's to handle:
        the state then holds too)."""
        for name, out in zip(self.recurrence.outputs, outputs[1:], strict=True):
            if not np.isfinite(out).all():
                return f"model output '{name}' (the next recurrent state) is not finite; the state holds"
        if np.isfinite(outputs[0]).all():
            # onnxruntime returns fresh arrays: feed them back as they are, no copy.
            self._state = tuple(outputs[1:])
            self._feed.update(zip(self.recurrence.inputs, self._state, strict=True))
        return None

    def _advance_history(self, accepted: bool) -> None:
        """One tick of the history: shift in last tick's action and, if ``accepted``, this tick's observation
        (``_obs_buf``); otherwise the newest observation slot keeps the last accepted one."""
        hist = self._frames
        if not self._history_started:
            if accepted:  # fills as envs/history.py does at a reset
                for frame in hist.obs_frames:
                    np.copyto(frame, self._obs_row)
                for frame in hist.act_frames:
                    np.copyto(frame, self._midpoint)
                self._history_started = True
            return
        if hist.act_frames:
            np.copyto(hist.act_older, hist.act_newer)  # overlapping 1-D views: numpy copies in place, no temporary
            np.copyto(hist.act_frames[-1], self._last_sent)
        np.copyto(hist.obs_older, hist.obs_newer)
        if accepted:
            np.copyto(hist.obs_frames[-1], self._obs_row)

    def _fill_from_flat(self, obs: np.ndarray | list[float]) -> None:
        flat = np.asarray(obs)
        _check_real_dtype(flat)
        if flat.ndim != 1:
            raise ObservationError(
                f"obs has shape {flat.shape}; act() takes a flat vector of {self.obs_dim} values "
                f"(layout: {self.metadata.layout_str()}); use act_batch() for (B, {self.obs_dim})"
            )
        if flat.shape[0] != self.obs_dim:
            raise ObservationError(
                f"obs has {flat.shape[0]} values, policy expects {self.obs_dim} "
                f"(layout: {self.metadata.layout_str()})"
            )
        self._raw_row[:] = flat

    def _fill_from_dict(self, obs: Mapping[str, np.ndarray | list[float]]) -> None:
        for name, size, view in self._field_views:
            if name not in obs:
                raise ObservationError(
                    f"obs dict is missing {name!r}; policy expects keys "
                    f"{[n for n, _ in self.layout]} (layout: {self.metadata.layout_str()})"
                )
            value = np.asarray(obs[name])
            _check_real_dtype(value, what=f"obs[{name!r}]")
            if value.ndim > 1 or value.size != size:
                raise ObservationError(
                    f"obs[{name!r}] has shape {value.shape}, policy expects {size} values "
                    f"(layout: {self.metadata.layout_str()})"
                )
            view[:] = value
        # Every layout name is present, so a size mismatch means extra keys.
        if len(obs) != len(self._field_views):
            known = {n for n, _ in self.layout}
            unknown = [k for k in obs if k not in known]
            raise ObservationError(
                f"obs dict has unknown key(s) {unknown}; policy expects exactly "
                f"{[n for n, _ in self.layout]} (layout: {self.metadata.layout_str()})"
            )


def _check_graph_signature(session: ort.InferenceSession, metadata: PolicyMetadata, path: Path) -> None:
    """The graph must take ``obs`` float32 [batch, obs_dim] and give ``action`` float32 [batch, act_dim],
    with the sizes the metadata promises and a dynamic batch dimension."""
    rec = metadata.recurrence
    state_in, state_out = (rec.inputs, rec.outputs) if rec is not None else ((), ())
    inputs = {i.name: i for i in session.get_inputs()}
    if sorted(inputs) != sorted([INPUT_NAME, *state_in]):
        expected = f"'{INPUT_NAME}' and the state inputs {list(state_in)} of its metadata's recurrence" if rec else (
            f"exactly one input named '{INPUT_NAME}' (a recurrent graph's metadata names its state inputs)")
        raise PolicyFileError(
            f"{path}: graph inputs are {list(inputs)}, robopg policies have {expected}; {_REEXPORT_FIX}"
        )
    outputs = {o.name: o for o in session.get_outputs()}
    missing = [name for name in (OUTPUT_NAME, *state_out) if name not in outputs]
    if missing:
        raise PolicyFileError(
            f"{path}: graph outputs are {list(outputs)}, robopg policies have an output named "
            f"'{OUTPUT_NAME}'" + (f" and the state outputs {list(state_out)}" if rec else "") + f"; {_REEXPORT_FIX}"
        )
    for name in (*state_in, *state_out):
        _check_state_signature(inputs[name] if name in inputs else outputs[name], rec, path)
    if metadata.history.stacked:
        input_field = f"an input of {metadata.input_dim} values (history: {metadata.history_str()})"
    else:
        input_field = f"obs_dim {metadata.obs_dim} (layout: {metadata.layout_str()})"
    for arg, expected_dim, meta_field in (
        (inputs[INPUT_NAME], metadata.input_dim, input_field),
        (outputs[OUTPUT_NAME], metadata.act_dim, f"act_dim {metadata.act_dim} (len(action_low))"),
    ):
        if arg.type != "tensor(float)":
            raise PolicyFileError(
                f"{path}: graph '{arg.name}' is {arg.type}, expected tensor(float); {_REEXPORT_FIX}"
            )
        shape = arg.shape
        if len(shape) != 2 or shape[1] != expected_dim:
            raise PolicyFileError(
                f"{path}: graph '{arg.name}' has shape {shape}, but the metadata says {meta_field}, "
                f"so expected [batch, {expected_dim}]; graph and metadata disagree, {_REEXPORT_FIX}"
            )
        if isinstance(shape[0], int):
            raise PolicyFileError(
                f"{path}: graph '{arg.name}' has a fixed batch dimension {shape[0]}; robopg policies have a "
                f"dynamic batch dimension; {_REEXPORT_FIX}"
            )


def _check_state_signature(arg: ort.NodeArg, rec: Recurrence, path: Path) -> None:
    """A state input or output must be float32 [layers, batch, hidden_size] with a dynamic batch dimension."""
    shape = arg.shape
    if arg.type != "tensor(float)" or len(shape) != 3 or (shape[0], shape[2]) != (rec.layers, rec.hidden_size) or (
            isinstance(shape[1], int)):
        raise PolicyFileError(
            f"{path}: graph '{arg.name}' is {arg.type} {shape}, but the metadata's recurrence says float "
            f"[{rec.layers}, batch, {rec.hidden_size}] ({rec.kind}); graph and metadata disagree, {_REEXPORT_FIX}"
        )


def _check_action_bounds(session: ort.InferenceSession, metadata: PolicyMetadata, path: Path) -> bool:
    """Run the graph with its ``action_probe`` at +-1e20, which saturates the clip inside the graph, and compare
    the actions it then gives with the metadata's bounds: they are the graph's own action range. Returns False
    for a graph without the probe (nothing to compare), raises ``PolicyFileError`` when they disagree.

    Why a probe and not the observations: the normaliser clips every input, so no observation is guaranteed to
    reach the clip; and the runtime has no ONNX parser to read the clip's constants (the probe runs the actual
    clip and affine map instead of trusting constants).
    """
    if ACTION_PROBE not in {init.name for init in session.get_overridable_initializers()}:
        return False
    feed = {INPUT_NAME: np.zeros((1, metadata.input_dim), dtype=np.float32)}
    rec = metadata.recurrence
    if rec is not None:  # the probe drives the clip whatever the state: zeros, an episode's first tick
        feed.update({name: np.zeros((rec.layers, 1, rec.hidden_size), np.float32) for name in rec.inputs})
    graph_range = []
    for value in (-_PROBE_VALUE, _PROBE_VALUE):
        probe = np.full(metadata.act_dim, value, dtype=np.float32)
        try:
            graph_range.append(session.run([OUTPUT_NAME], {**feed, ACTION_PROBE: probe})[0][0])
        except Exception as err:  # onnxruntime's pybind errors: the probe has a shape the metadata does not
            raise PolicyFileError(
                f"{path}: graph's '{ACTION_PROBE}' does not take {metadata.act_dim} values ({err}); {_REEXPORT_FIX}"
            ) from None
    low, high = (np.asarray(b, dtype=np.float64) for b in (metadata.action_low, metadata.action_high))
    tolerance = 1e-5 * np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
    if (np.abs(graph_range[0] - low) > tolerance).any() or (np.abs(graph_range[1] - high) > tolerance).any():
        def spans(lows: np.ndarray, highs: np.ndarray) -> str:
            return ", ".join(f"[{lo:.6g}, {hi:.6g}]" for lo, hi in zip(lows, highs, strict=True))

        raise PolicyFileError(
            f"{path}: the graph maps actions onto {spans(*graph_range)} (the clip inside it), but the metadata "
            f"says action bounds {spans(low, high)}; graph and metadata disagree (edited metadata?), "
            f"{_REEXPORT_FIX}"
        )
    return True


class _HistoryViews:
    """1-D views into the graph's input row for stacking: K observation frames then M action frames, oldest
    first. ``*_older`` / ``*_newer``: all frames but the newest / but the oldest (a shift copies newer -> older)."""

    def __init__(self, row: np.ndarray, obs_dim: int, act_dim: int, history: History) -> None:
        k, m = history.observations, history.actions
        obs_end = k * obs_dim
        self.obs_frames = tuple(row[i * obs_dim : (i + 1) * obs_dim] for i in range(k))
        self.act_frames = tuple(row[obs_end + i * act_dim : obs_end + (i + 1) * act_dim] for i in range(m))
        self.obs_older, self.obs_newer = row[: obs_end - obs_dim], row[obs_dim:obs_end]
        self.act_older, self.act_newer = row[obs_end : row.size - act_dim], row[obs_end + act_dim :]


def _field_offsets(layout: tuple[tuple[str, int], ...]) -> list[tuple[str, int, int]]:
    """(name, size, start index in the flat observation) for each layout field."""
    offsets, start = [], 0
    for name, size in layout:
        offsets.append((name, size, start))
        start += size
    return offsets


def _check_real_dtype(arr: np.ndarray, what: str = "obs") -> None:
    # Strings, objects and bools are wiring bugs; a float cast would hide or mangle them.
    if arr.dtype.kind not in "fiu":
        raise ObservationError(f"{what} has dtype {arr.dtype}, expected real numbers (float or int)")
