"""Errors raised by the robot-side runtime.

Both are ``ValueError`` subclasses, and both mean "fix something before the control loop runs":

- ``PolicyFileError``: the policy file cannot be used (missing, not ONNX, not written by
  ``robopg export``, unknown format version, graph and metadata disagree). Fix: the path, or re-export.
- ``ObservationError``: the observation handed to ``Controller.act`` does not match the policy's
  layout (wrong size, unknown or missing dict key). Fix: the wiring between sensors and controller.
- ``LogFileError``: a replay log cannot be read (missing, malformed line, wrong array names). Fix: the log.

Non-finite or out-of-range observations are *not* errors: the controller returns its safe action and counts them.

``FileWarning`` (``PolicyFileWarning`` here, robopg's ``CheckpointWarning``): a file loads, but the operator should
know something about it (no integrity digest, an older checkpoint used in place of a damaged one).
``notes_to_stderr`` makes the command-line programs print these as one line each.
"""

from __future__ import annotations

import sys
import warnings


class PolicyFileError(ValueError):
    """The policy file or its metadata is unusable; the message names the file, the problem and the fix."""


class ObservationError(ValueError):
    """An observation does not match the policy's observation layout (a wiring bug, not a sensor fault)."""


class LogFileError(ValueError):
    """A replay log (JSONL or NPZ) is unusable; the message names the file, the line or array, and the fix."""


class FileWarning(UserWarning):
    """A file is usable, with a caveat the operator should read (the message names the file and the fix)."""


class PolicyFileWarning(FileWarning):
    """The policy file loads but lacks a check newer files carry (e.g. no integrity digest): re-export it."""


def notes_to_stderr(prog: str) -> None:
    """From now on print each ``FileWarning`` as one line ``"{prog}: note: {message}"`` on stderr (the default
    display adds the source line of the ``warn`` call, which means nothing to an operator); other warnings keep
    the default display. For command-line entry points."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 (warnings' signature)
        if issubclass(category, FileWarning):
            print(f"{prog}: note: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
