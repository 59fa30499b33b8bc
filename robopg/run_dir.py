"""The run directory's life: when it may be started, reused or resumed, and what a resume rewinds.

Rules (docs/design.md, "Run directory"):

- **Nothing is written before the first iteration.** ``RunDirectory`` creates the directory, ``config.json``,
  ``metrics.csv`` and the trackers' files when the run logs its first iteration, so any error or interrupt during
  start-up (a bad spec file, a config the first update refuses, Ctrl-C while the environments are built) leaves
  nothing behind, and the fixed command just works.
- **A directory without a checkpoint is empty.** A run killed before its first checkpoint leaves logs but nothing
  to resume: ``--out`` reuses such a directory (its leftover files are removed when the new run writes its
  first iteration) and ``--resume`` says to start it again.
- **A resume may change only bookkeeping** (``RESUMABLE``): a checkpoint continues the networks, optimiser and
  environments of the run that wrote it, so a changed task, algorithm, network or any other setting is refused.
- **A resume rewinds the logs to the checkpoint.** Rows a run wrote to metrics.csv after its last checkpoint
  (up to ``checkpoint_every - 1`` of them when it was killed) are dropped, TensorBoard purges the same steps, and
  W&B / MLflow, which cannot delete logged points, skip the steps they already hold (robopg/tracking.py).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

from robopg.checkpoint import FINAL, LATEST, STEP_GLOB, atomic_write_bytes, run_checkpoint_candidates
from robopg.config import SECTIONS, TrainConfig
from robopg.logger import METRICS_FILE, MetricsLogger
from robopg.tracking import CONFIG_FILE, TRACKING_FILE, ResumePoint

TENSORBOARD_DIR = "tb"
UNSTARTED_FILES = (CONFIG_FILE, METRICS_FILE, TENSORBOARD_DIR, TRACKING_FILE)
"""What a run writes before its first checkpoint; removed when a new run reuses a directory without one."""
RESUMABLE = ("run.total_steps", "run.checkpoint_every", "run.torch_threads", "run.update_threads", "run.logger",
             "run.project", "run.wandb_mode", "run.mlflow_tracking_uri")
"""The config fields a resume may change: how long, how often to checkpoint, threads and trackers."""


class RunDirError(ValueError):
    """A run directory cannot be used as asked; the message names it and the fix (the CLI exits 2)."""


def has_checkpoint(run_dir: Path) -> bool:
    """True when ``run_dir`` holds latest.pt, final.pt or a checkpoints/step_*.pt (readable or not)."""
    return bool(run_checkpoint_candidates(Path(run_dir), (LATEST, FINAL)))


def check_train_arguments(out: str | None, resume: str | None, config: str | None) -> None:
    """``robopg train``'s directory arguments: --out for a new run, --resume (alone) to continue one."""
    if resume is None and out is None:
        raise RunDirError("--out RUN_DIR is required. Fix: pass --out RUN_DIR for a new run, or --resume RUN_DIR "
                          "to continue one")
    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise RunDirError(f"--resume continues {resume} in place, so --out {out} would be ignored. Fix: drop --out "
                          f"(to continue in another directory, copy {resume} to {out} and pass --resume {out})")
    if resume is not None and config is not None:
        raise RunDirError(f"--resume continues {resume} with its own {CONFIG_FILE}, so --config {config} would be "
                          f"ignored. Fix: drop --config; a resume may change only {', '.join(_flags(RESUMABLE))}")


def check_new_run(out: Path) -> None:
    """A new run may go into a missing directory, an empty one, or one that holds no checkpoint (a run that
    stopped before its first); a directory with a checkpoint holds a run to resume."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file. Fix: pass a directory (it is created) for the run")
    if has_checkpoint(out):
        raise RunDirError(f"{out} already holds a run. Fix: continue it with --resume {out}, or choose another --out")
    if (out / CONFIG_FILE).is_file() and not _is_run_config(out / CONFIG_FILE):
        raise RunDirError(f"{out / CONFIG_FILE} was not written by robopg train, and a run would replace it. "
                          "Fix: choose another --out")


def _is_run_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "run" in data and set(data) <= set(SECTIONS)


def saved_config(run_dir: Path) -> TrainConfig:
    """The configuration of the run in ``run_dir`` (its config.json), which must hold a checkpoint to resume."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no {CONFIG_FILE}: it is not a run directory. Fix: pass --resume the --out "
                          "directory of a robopg train run")
    if not has_checkpoint(run_dir):
        raise RunDirError(
            f"{run_dir} holds no checkpoint ({LATEST}, {FINAL} or {STEP_GLOB}): the run stopped before writing its "
            f"first one, so there is nothing to resume. Fix: start it again with robopg train --config {path} "
            f"--out {run_dir}"
        )
    return TrainConfig.from_dict(json.loads(path.read_text()), source=str(path))


def check_resume_changes(run_dir: Path, saved: TrainConfig, resumed: TrainConfig) -> None:
    """Refuse a resume that changes anything but ``RESUMABLE`` (naming each change and what may change)."""
    before, after = _flat(saved), _flat(resumed)
    changed = [f"{key} ({_shown(before[key])} -> {_shown(after[key])})" for key in before
               if key in after and key not in RESUMABLE and before[key] != after[key]]
    if changed:
        raise RunDirError(
            f"--resume {run_dir} cannot change {', '.join(changed)}: a checkpoint continues the run that wrote it. A "
            f"resume may change only {', '.join(_flags(RESUMABLE))}. Fix: drop the other flags, or start a new run "
            "with --out NEW_DIR"
        )


def _flat(cfg: TrainConfig) -> dict[str, Any]:
    return {f"{section}.{name}": value for section, values in cfg.to_dict().items() for name, value in values.items()}


def _shown(value: Any) -> str:
    return " ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _flags(keys: tuple[str, ...]) -> list[str]:
    return ["--" + key.split(".", 1)[1].replace("_", "-") for key in keys]


def check_steps_left(run_dir: Path, global_step: int, total_steps: int) -> None:
    """A resumed run must have steps left to train."""
    if global_step >= total_steps:
        raise RunDirError(f"{run_dir} is at step {global_step} and its total_steps is {total_steps}: nothing is left "
                          f"to train. Fix: pass --total-steps with more than {global_step} steps (or export the run "
                          "as it is)")


def truncate_metrics(run_dir: Path, iterations: int) -> int:
    """Keep the header and the first ``iterations`` rows of metrics.csv, the ones logged up to the checkpoint a
    run resumes from; rows written after it (a run killed between checkpoints) are dropped. Returns the highest
    step the file held before (what the trackers may hold), 0 without a file."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    steps = [int(float(row[0])) for row in body if row and _is_number(row[0])]
    if len(body) > iterations:
        text = io.StringIO(newline="")
        csv.writer(text).writerows([header, *body[:iterations]])
        atomic_write_bytes(path, lambda f: f.write(text.getvalue().encode()))
    return max(steps, default=0)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def clear_unstarted(run_dir: Path) -> None:
    """Remove what a run that wrote no checkpoint left (``UNSTARTED_FILES``), before a new run starts there."""
    for name in UNSTARTED_FILES:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class RunDirectory:
    """The files of one ``Trainer.train`` call, written from its first iteration on (``logger()``), so nothing
    exists, or changes, before the run has trained an iteration.

    resumed: (iteration, global_step) of the checkpoint the run continues, None for a new run. A new run clears a
    reused directory's leftovers; a resumed one rewinds metrics.csv and the trackers to the checkpoint.
    """

    def __init__(self, path: Path, config: dict[str, Any], resumed: tuple[int, int] | None) -> None:
        self.path = Path(path)
        self.config = config
        self.resumed = resumed
        self._logger: MetricsLogger | None = None

    @property
    def opened(self) -> bool:
        """True once the run has written its first iteration."""
        return self._logger is not None

    def logger(self) -> MetricsLogger:
        if self._logger is None:
            self._logger = self._open()
        return self._logger

    def _open(self) -> MetricsLogger:
        if self.resumed is None:
            clear_unstarted(self.path)
        text = json.dumps(self.config, indent=2).encode()
        atomic_write_bytes(self.path / CONFIG_FILE, lambda f: f.write(text))
        if self.resumed is None:
            return MetricsLogger(self.path, self.config)
        iteration, step = self.resumed
        logged_until = truncate_metrics(self.path, iteration)
        return MetricsLogger(self.path, self.config, resumed=ResumePoint(step, logged_until))

    def close(self) -> None:
        if self._logger is not None:
            self._logger.close()
