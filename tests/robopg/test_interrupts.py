"""Real signals to a real `robopg train` process (robopg/interrupts.py): SIGTERM, as `timeout`, systemd, Kubernetes
and SLURM send it, stops like Ctrl-C, with a checkpoint after the iteration in progress, the command that
continues and exit 143 (Ctrl-C: 130); a signal during start-up writes nothing and says so in one line."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_processes import BATCH, SMALL, default_signals, robopg, rows_written, start, wait_for_rows

from robopg.checkpoint import load_checkpoint
from robopg.interrupts import Interrupted, StopRequests
from robopg.logger import read_metrics


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_checkpoints_the_run_says_how_to_continue_and_exits_128_plus_its_number(tmp_path, signum, code):
    run = tmp_path / "run"
    proc = start("train", *SMALL, "--total-steps", "100000", "--checkpoint-every", "1000", "--out", str(run))
    wait_for_rows(proc, run, 2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    name = signal.Signals(signum).name
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(rf"robopg train: interrupted \({name}\) at step (\d+); saved (\S+)\. "
                         rf"Continue with: (robopg train --resume {re.escape(str(run))})", last)
    assert match, err
    step, saved, command = int(match[1]), Path(match[2]), match[3]
    # The iteration in progress finished: the checkpoint holds exactly the iterations metrics.csv logged.
    checkpoint = load_checkpoint(saved)
    rows = read_metrics(run)
    assert checkpoint["global_step"] == step == rows[-1]["step"] and checkpoint["iteration"] == len(rows)
    assert load_checkpoint(run / "latest.pt")["global_step"] == step
    if signum == signal.SIGINT:
        return  # continuing is the same for both

    continued = robopg(*command.split()[1:], "--total-steps", str(step + 2 * BATCH), "--no-progress")
    assert continued.returncode == 0, continued.stderr
    assert [r["step"] for r in read_metrics(run)] == [BATCH * i for i in range(1, len(rows) + 3)]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_writes_nothing_and_says_so(tmp_path, signum, code):
    run = tmp_path / "run"
    proc = start("train", *SMALL, "--total-steps", "100000", "--out", str(run))
    # The CLI imports torch only once `robopg train` runs (before: argument parsing, config): signal then.
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 120
    while "libtorch" not in maps.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip() == (f"robopg train: interrupted ({signal.Signals(signum).name}) during start-up, before the "
                           "first iteration: nothing was written. Run the same command again")
    assert not run.exists() and rows_written(run) == 0


def test_ctrl_c_while_the_libraries_load_is_one_line_not_a_traceback(tmp_path):
    run = tmp_path / "run"
    # `python -m robopg`, the installed command's path (robopg/entry.py); start() runs robopg.cli directly.
    proc = subprocess.Popen([sys.executable, "-m", "robopg", "train", *SMALL, "--total-steps", "100000", "--out",
                             str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    # numpy is among the first libraries `robopg.cli` loads: the signal lands while the CLI is still importing
    # (robopg/entry.py answers it) or, on a fast machine, just after (robopg/cli.py does): one line either way.
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 120
    while "_multiarray_umath" not in maps.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "interrupted (SIGINT) during start-up" in err and "Run the same command again" in err
    assert not run.exists()


def test_a_second_signal_stops_at_once_and_saves_nothing(tmp_path):
    run = tmp_path / "run"
    # Iterations of 2 x 600 steps take seconds: the second signal comes while the first one waits for the end.
    proc = start("train", *SMALL[:4], "--rollout-steps", "600", *SMALL[6:], "--total-steps", "100000",
                 "--checkpoint-every", "1000", "--out", str(run))
    wait_for_rows(proc, run, 1)  # past the first iteration: a first signal is held to the iteration's end
    proc.send_signal(signal.SIGTERM)
    assert "SIGTERM: stopping at the end of this iteration" in proc.stderr.readline() + proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        "robopg train: interrupted (SIGINT) twice: stopped at once, mid-iteration, without saving. It had written no "
        f"checkpoint yet. Start it again with --out {run}")
    assert not (run / "latest.pt").exists() and rows_written(run) == 1


@pytest.fixture
def signals_answered():
    """SIGINT and SIGTERM with handlers for the test, whatever the suite inherited: a shell that starts pytest in
    the background passes SIGINT on as ignored, and ``installed()`` keeps an ignored signal ignored."""
    previous = {signum: signal.signal(signum, signal.default_int_handler) for signum in (signal.SIGINT,
                                                                                          signal.SIGTERM)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_signals_inside_the_record_step_wait_for_it_to_return(signals_answered):
    """The record step (logs, TensorBoard's writer queue, a checkpoint) is never interrupted half-way: two real
    signals sent from inside it let it finish, then the second raises as a mid-iteration stop."""
    stops, finished = StopRequests(), []

    def record(signals):
        for signum in signals:
            before = stops.pending, stops.second
            os.kill(os.getpid(), signum)
            # Python runs handlers of signals pending together lowest number first: let this one run first.
            waited = time.monotonic() + 10
            while (stops.pending, stops.second) == before and time.monotonic() < waited:
                time.sleep(0.001)
        finished.append(True)
        return "metrics"

    with stops.installed():
        assert stops.iteration_end(lambda: record([])) == "metrics"
        with pytest.raises(Interrupted) as caught:
            stops.iteration_end(lambda: record([signal.SIGTERM, signal.SIGINT]))
    assert finished == [True, True]
    assert caught.value.signum == signal.SIGINT and not caught.value.at_boundary

    stops = StopRequests()
    with stops.installed(), pytest.raises(Interrupted) as caught:
        stops.iteration_end(lambda: record([signal.SIGTERM]))
    assert caught.value.signum == signal.SIGTERM and caught.value.at_boundary
