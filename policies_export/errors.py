"""Errors raised by the robot-side runtime.

Both are ``ValueError`` subclasses, and both mean "fix something before the control loop runs":

- ``PolicyFileError``: the policy file cannot be used (missing, not ONNX, not written by
  ``robopg export``, unknown format version, graph and metadata disagree). Fix: the path, or re-export.
- ``ObservationError``: the observation handed to ``Controller.act`` does not match the policy's
  layout (wrong size, unknown or missing dict key). Fix: the wiring between sensors and controller.
- ``LogFileError``: a replay log cannot be read (missing, malformed line, wrong array names). Fix: the log.

Non-finite or out-of-range observations are *not* errors: the controller returns its safe action and counts them.
"""

from __future__ import annotations


class PolicyFileError(ValueError):
    """The policy file or its metadata is unusable; the message names the file, the problem and the fix."""


class ObservationError(ValueError):
    """An observation does not match the policy's observation layout (a wiring bug, not a sensor fault)."""


class LogFileError(ValueError):
    """A replay log (JSONL or NPZ) is unusable; the message names the file, the line or array, and the fix."""
