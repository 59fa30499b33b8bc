"""Errors raised by the robot-side runtime.

Both are ``ValueError`` subclasses, and both mean "fix something before the control loop runs":

- ``PolicyFileError``: the policy file cannot be used (missing, not ONNX, not written by
  ``robopg export``, unknown format version, graph and metadata disagree). Fix: the path, or re-export.
- ``ObservationError``: the observation handed to ``Controller.act`` does not match the policy's
  layout (wrong size, unknown or missing dict key). Fix: the wiring between sensors and controller.

Non-finite observations are *not* errors: the controller returns its safe action and counts them.
"""

from __future__ import annotations


class PolicyFileError(ValueError):
    """The policy file or its metadata is unusable; the message names the file, the problem and the fix."""


class ObservationError(ValueError):
    """An observation does not match the policy's observation layout (a wiring bug, not a sensor fault)."""
