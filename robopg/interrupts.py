"""Stopping a training run from outside: Ctrl-C (SIGINT) and SIGTERM, what ``timeout``, systemd, Kubernetes and
cluster schedulers (SLURM) send before they kill, end it the same way: a checkpoint, the command that continues it,
and the shell's status for the signal (130 for SIGINT, 143 for SIGTERM).

Python turns SIGINT into ``KeyboardInterrupt``; inside ``sigterm_interrupts()`` SIGTERM raises ``Interrupted``
(a ``KeyboardInterrupt`` too) the same way, so one ``except KeyboardInterrupt`` handles both. That is the CLI's
start-up, where there is nothing to save. Once a run has trained an iteration, ``StopRequests`` takes over: the
first signal lets the current iteration finish and stops the run at its end (``Interrupted(at_boundary=True)``),
so the checkpoint saved then holds whole iterations, the state a periodic checkpoint would hold and a resume
continues exactly; a second signal stops at once, mid-iteration, and nothing more is saved. "At once" waits only
for the iteration's record step (logs, TensorBoard, a periodic checkpoint) if the signal lands inside it: an
exception raised inside TensorBoard's writer queue leaves its writer thread asleep with an item queued, and the
logger's close then waits for it forever (a hang seen under load, py-spy: ``Queue.join`` in ``SummaryWriter.close``).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped by ``signum``; the message says what was saved and how to continue.
    at_boundary: raised between iterations (the state is whole iterations), not in the middle of one."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT, at_boundary: bool = False) -> None:
        super().__init__(message)
        self.signum = signum
        self.at_boundary = at_boundary

    @property
    def exit_code(self) -> int:
        """The status a shell reports for a process ended by the signal: 128 + its number."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


def signal_of(err: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: SIGINT for Python's own KeyboardInterrupt."""
    return err.signum if isinstance(err, Interrupted) else signal.SIGINT


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum=signum)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM raises ``Interrupted(signum=SIGTERM)`` in the main thread, as Ctrl-C raises
    KeyboardInterrupt; the previous handler comes back after. Elsewhere than the main thread (where Python runs
    signal handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopRequests:
    """SIGINT and SIGTERM while a run trains (``installed()``): until the first iteration's update is done (the
    run's start-up) a signal raises ``Interrupted`` at once; after, the first one is held until the iteration in
    progress ends, where ``iteration_end`` raises it, and a second raises at once, or, inside the record step,
    as soon as that step returns (it is never interrupted half-way).

    enabled=False (under torchrun) leaves the handlers as they are: a checkpoint there is a collective every rank
    must enter at the same iteration, which ranks stopped by signals they each received at their own moment cannot
    promise; the run continues from its last periodic checkpoint instead (docs/distributed.md)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.pending: int | None = None
        self.deferring = False
        self.recording = False
        self.second: int | None = None  # a second signal that arrived during the record step

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The handlers, in the main thread (where Python runs them); the previous ones come back after. A signal
        the process ignores stays ignored (a shell starts background jobs with SIGINT ignored)."""
        if not self.enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS
                    if signal.getsignal(signum) is not signal.SIG_IGN}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.recording and self.pending is not None:
            self.second = signum
            return
        if not self.deferring or self.pending is not None:
            raise Interrupted(signum=signum)
        self.pending = signum
        print(f"\n{signal.Signals(signum).name}: stopping at the end of this iteration, with a checkpoint "
              "(send it again to stop at once)", file=sys.stderr, flush=True)

    def iteration_end(self, record: Callable[[], T]) -> T:
        """Run an iteration's last step, ``record`` (its update is done: from here on a signal waits for the
        iteration's end), and return what it returns; then raise a held signal: a second one as if it had come
        mid-iteration, a first one at the boundary."""
        self.deferring = True
        self.recording = True
        try:
            value = record()
        finally:
            self.recording = False
        if self.second is not None:
            raise Interrupted(signum=self.second)
        if self.pending is not None:
            raise Interrupted(signum=self.pending, at_boundary=True)
        return value
