"""`robopg train` as real processes, for the tests of run directories and signals."""

import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# 2 envs x 16 steps = 32 env steps per iteration; FetchReach episodes are 50 steps long.
SMALL = ["--task", "FetchReachDense-v4", "--num-envs", "2", "--rollout-steps", "16", "--epochs", "1",
         "--minibatches", "2", "--seed", "5", "--no-progress"]
BATCH = 32


def robopg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robopg.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT)


def default_signals() -> None:
    """Popen's preexec_fn: the child answers SIGINT and SIGTERM as a terminal's child does. A shell that starts
    pytest in the background (`make test &`) passes SIGINT on as ignored, and robopg keeps an ignored signal ignored
    (the nohup convention), so without this the signal tests would depend on how the suite was launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robopg.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, preexec_fn=default_signals)


def rows_written(run: Path) -> int:
    path = run / "metrics.csv"
    return max(len(path.read_text().splitlines()) - 1, 0) if path.is_file() else 0


def wait_for_rows(proc: subprocess.Popen, run: Path, count: int, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while rows_written(run) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{run} did not reach {count} rows"
        time.sleep(0.01)


