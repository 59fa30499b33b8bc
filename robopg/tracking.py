"""Run trackers: where ``MetricsLogger`` sends each iteration's scalars besides metrics.csv.

``[run] logger`` (``--logger tensorboard wandb mlflow``) picks them; each gets exactly the scalars of the
metrics.csv row, at the same step. W&B and MLflow are optional extras, imported only when asked for:

- TensorBoard: event files in RUN_DIR/tb (also the randomisation histograms).
- W&B: offline by default (``[run] wandb_mode``), files under RUN_DIR/wandb that ``wandb sync`` uploads later;
  the resolved config is the run's config.
- MLflow: a SQLite store RUN_DIR/mlflow.db unless ``[run] mlflow_tracking_uri`` (or $MLFLOW_TRACKING_URI)
  names another; the config as flattened params plus config.json as an artefact.

The ids of the W&B and MLflow runs are kept in RUN_DIR/tracking.json, so ``--resume`` continues the same
tracked runs and ``robopg export`` attaches the exported file to them (``attach_policy``).

A resumed run continues from its checkpoint, which can be up to ``checkpoint_every - 1`` iterations behind the
last step logged (a run killed between checkpoints). TensorBoard purges the steps after the checkpoint (its
``purge_step``), so it shows the resumed run's values, as metrics.csv does. W&B and MLflow cannot delete logged
points (W&B refuses steps below its last one, MLflow would keep two values per step), so they skip the steps they
already hold (``SkipLogged``): every step appears once, with the first attempt's values for those steps. The
highest step logged is kept in tracking.json as ``logged_until``, so a second crash before the resumed run passes
it skips the same steps.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robopg.config import Tracker

TRACKING_FILE = "tracking.json"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run continues its logs."""

    step: int
    """The global step of the checkpoint it resumed from: it logs only steps after it."""
    logged_until: int
    """The highest step logged before the resume (metrics.csv's last row before it was rewound)."""


class RunTracker(Protocol):
    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def histograms(self, step: int, values: dict[str, np.ndarray], prefix: str) -> None: ...

    def flush(self) -> None:
        """Everything logged so far onto disk (before a checkpoint, so a killed run's resume finds it)."""

    def close(self) -> None: ...


def _missing(extra: str, package: str) -> ValueError:
    return ValueError(f"--logger {extra} needs the {package} package, which is not installed. "
                      f"Fix: pip install 'robopg[{extra}]', or drop {extra} from --logger")


class TensorBoardTracker:
    """purge_step: events at this step and after, written before (a run resumed from an earlier checkpoint), are
    dropped by TensorBoard's reader.

    Each step's scalars go into one event, and the events reach the writer's thread in batches, at most every
    HAND_OVER_SECONDS (and at close): an ``add_scalar`` per value queues an event each and wakes that thread each
    time, which cost about 10% of an A2C iteration on InvertedPendulum-v5 (docs/bench_algorithms.md). The file
    holds the same events either way; a run killed in between loses the last second of them from TensorBoard
    (metrics.csv has every row); the trainer flushes at every checkpoint, so a resumed run misses none."""

    HAND_OVER_SECONDS = 1.0

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge_step)
        self._summary = Summary  # TensorBoard's protobuf, imported with the writer (an optional dependency)
        self._pending: list[tuple[Any, int]] = []
        self._handed_over = time.monotonic()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        values = [self._summary.Value(tag=key, simple_value=float(value)) for key, value in metrics.items()]
        self._pending.append((self._summary(value=values), step))
        if time.monotonic() - self._handed_over >= self.HAND_OVER_SECONDS:
            self._hand_over()

    def histograms(self, step: int, values: dict[str, np.ndarray], prefix: str) -> None:
        for name, x in values.items():
            if len(x):
                self.writer.add_histogram(f"{prefix}/{name}", np.asarray(x, dtype=np.float64), step)

    def flush(self) -> None:
        self._hand_over()
        self.writer.flush()

    def close(self) -> None:
        self._hand_over()
        self.writer.close()

    def _hand_over(self) -> None:
        for summary, step in self._pending:
            self.writer.file_writer.add_summary(summary, step)
        self._pending = []
        self._handed_over = time.monotonic()


class WandbTracker:
    """One W&B run per run directory; a resumed run appends to it (same id, ``resume="allow"``)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], state: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise _missing("wandb", "wandb") from None
        run_cfg = config["run"]
        self.mode = run_cfg["wandb_mode"]
        self.run = wandb.init(
            project=run_cfg["project"], name=run_dir.name, config=config, dir=str(run_dir), mode=self.mode,
            id=state.get("id"), resume="allow",
            # console capture and system metrics would interleave with the progress bar and add a sampler.
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )
        state.update(id=self.run.id, project=run_cfg["project"], mode=self.mode)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(dict(metrics), step=step)

    def histograms(self, step: int, values: dict[str, np.ndarray], prefix: str) -> None:
        """TensorBoard keeps the randomisation histograms; W&B gets the scalars of metrics.csv only."""

    def flush(self) -> None:
        """W&B's service writes as it receives."""

    def close(self) -> None:
        import wandb

        self.run.finish()
        # finish() returns before W&B's service has flushed the run's file; teardown waits for it, so the
        # record is complete (for `wandb sync`, or a reader) when training returns.
        wandb.teardown()


class MlflowTracker:
    """One MLflow run per run directory (resumed runs continue it), through ``MlflowClient``: no global state."""

    def __init__(self, run_dir: Path, config: dict[str, Any], state: dict[str, Any]) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing("mlflow", "mlflow-skinny") from None
        run_cfg = config["run"]
        # Creating the SQLite tables logs two INFO lines into the middle of the progress bar.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        self.uri = mlflow_uri(run_dir, run_cfg["mlflow_tracking_uri"])
        self.client = MlflowClient(self.uri)
        if state.get("run_id") and state.get("tracking_uri") == self.uri:
            self.run_id = state["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            experiment = self.client.get_experiment_by_name(run_cfg["project"])
            if experiment is None:
                # Artefacts beside the run's own SQLite store; a shared server keeps its own default.
                local = not run_cfg["mlflow_tracking_uri"] and not os.environ.get("MLFLOW_TRACKING_URI")
                location = (run_dir.resolve() / "mlartifacts").as_uri() if local else None
                experiment_id = self.client.create_experiment(run_cfg["project"], artifact_location=location)
            else:
                experiment_id = experiment.experiment_id
            self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
            self._log_params(flatten(config))
        state.update(run_id=self.run_id, tracking_uri=self.uri)
        if (run_dir / CONFIG_FILE).is_file():
            self.client.log_artifact(self.run_id, str(run_dir / CONFIG_FILE))

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def histograms(self, step: int, values: dict[str, np.ndarray], prefix: str) -> None:
        """TensorBoard keeps the randomisation histograms; MLflow gets the scalars of metrics.csv only."""

    def flush(self) -> None:
        """Each log_batch is a committed transaction."""

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class SkipLogged:
    """A tracker that already holds the steps up to ``through`` (a run resumed from an earlier checkpoint): those
    are not sent again."""

    def __init__(self, tracker: RunTracker, through: int) -> None:
        self.tracker, self.through = tracker, through

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if step > self.through:
            self.tracker.log(step, metrics)

    def histograms(self, step: int, values: dict[str, np.ndarray], prefix: str) -> None:
        if step > self.through:
            self.tracker.histograms(step, values, prefix)

    def flush(self) -> None:
        self.tracker.flush()

    def close(self) -> None:
        self.tracker.close()


def mlflow_uri(run_dir: Path, configured: str) -> str:
    """``[run] mlflow_tracking_uri``, else $MLFLOW_TRACKING_URI, else a SQLite file in the run directory."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{run_dir.resolve() / 'mlflow.db'}"


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """{"run": {"seed": 1}} -> {"run.seed": 1}; lists become their JSON text."""
    return {f"{section}.{name}": json.dumps(value) if isinstance(value, list) else value
            for section, values in config.items() for name, value in values.items()}


def open_trackers(run_dir: Path, config: dict[str, Any], resumed: ResumePoint | None = None) -> list[RunTracker]:
    """The trackers ``config["run"]["logger"]`` names (TensorBoard alone for a config without the field);
    the W&B and MLflow run ids are written to RUN_DIR/tracking.json for resume and export. resumed: see the
    module docstring."""
    kinds = [Tracker(k) for k in config.get("run", {}).get("logger", [Tracker.TENSORBOARD])]
    state = read_tracking(run_dir)
    through = 0
    if resumed is not None and state:
        through = state["logged_until"] = max(resumed.logged_until, state.get("logged_until", 0))
    trackers: list[RunTracker] = []
    for kind in kinds:
        if kind is Tracker.TENSORBOARD:
            trackers.append(TensorBoardTracker(run_dir, None if resumed is None else resumed.step + 1))
        elif kind is Tracker.WANDB:
            trackers.append(SkipLogged(WandbTracker(run_dir, config, state.setdefault("wandb", {})), through))
        else:
            trackers.append(SkipLogged(MlflowTracker(run_dir, config, state.setdefault("mlflow", {})), through))
    if state:
        (run_dir / TRACKING_FILE).write_text(json.dumps(state, indent=2))
    return trackers


def where_tracked(run_dir: Path) -> list[str]:
    """One line per tracker of a run: where its record is and the command that shows it."""
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    state = read_tracking(run_dir)
    lines = []
    for kind in config["run"].get("logger", [Tracker.TENSORBOARD]):
        if kind == Tracker.TENSORBOARD:
            lines.append(f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}")
        elif kind == Tracker.WANDB and "wandb" in state:
            wb = state["wandb"]
            if wb["mode"] == "offline":
                lines.append(f"W&B (offline) run {wb['id']}: upload with wandb sync {run_dir / 'wandb'}/offline-run-*")
            else:
                lines.append(f"W&B run {wb['id']} in project {wb['project']}")
        elif kind == Tracker.MLFLOW and "mlflow" in state:
            ml = state["mlflow"]
            lines.append(f"MLflow run {ml['run_id']}: mlflow ui --backend-store-uri {ml['tracking_uri']}")
    return lines


def read_tracking(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / TRACKING_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def run_dir_of(path: Path) -> Path | None:
    """The run directory of a run directory or of one of its checkpoints (final.pt, checkpoints/step_*.pt)."""
    for candidate in (path, path.parent, path.parent.parent):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    return None


def attach_policy(run: Path, policy: Path) -> list[str]:
    """Attach an exported file to the W&B and MLflow runs of ``run`` (a run directory or a checkpoint in one).

    MLflow: an artefact of the training run. W&B: a ``model`` artefact logged by a short run of job type
    ``export`` in the training run's group (W&B's lineage: the run that made a file logs it). Returns one line
    per tracker for the CLI to print; nothing for runs tracked by TensorBoard alone."""
    run_dir = run_dir_of(Path(run))
    state = read_tracking(run_dir) if run_dir is not None else {}
    lines = []
    if "mlflow" in state:
        from mlflow.tracking import MlflowClient

        MlflowClient(state["mlflow"]["tracking_uri"]).log_artifact(state["mlflow"]["run_id"], str(policy))
        lines.append(f"attached {policy.name} to mlflow run {state['mlflow']['run_id']}")
    if "wandb" in state:
        import wandb

        wb = state["wandb"]
        export_run = wandb.init(project=wb["project"], name=f"{run_dir.name}-export", group=wb["id"],
                                job_type="export", dir=str(run_dir), mode=wb["mode"],
                                settings=wandb.Settings(console="off", x_disable_stats=True, silent=True))
        artifact = wandb.Artifact(re.sub(r"[^\w.-]", "_", f"{run_dir.name}-policy"), type="model",
                                  metadata={"training_run": wb["id"]})
        artifact.add_file(str(policy))
        export_run.log_artifact(artifact)
        export_run.finish()
        wandb.teardown()  # flushed to disk before export returns (see WandbTracker.close)
        lines.append(f"attached {policy.name} to wandb as artefact {artifact.name} (run {export_run.id})")
    return lines
