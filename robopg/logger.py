"""Metrics to ``metrics.csv`` (one row per iteration) and to the run's trackers (TensorBoard, W&B, MLflow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from robopg.tracking import CONFIG_FILE, ResumePoint, RunTracker, open_trackers

METRICS_FILE = "metrics.csv"


class MetricsLogger:
    """Appends rows to metrics.csv (columns fixed by the first row; a resumed run appends) and sends the same
    scalars to each tracker of ``[run] logger`` (robopg/tracking.py).

    config: the run's resolved configuration (``TrainConfig.to_dict()``); None reads RUN_DIR/config.json,
    which the trainer writes before logging starts, and without one logs to TensorBoard alone.
    resumed: where a resumed run continues (its metrics.csv already rewound to it, robopg/run_dir.py), so the
    trackers drop or skip the steps logged after its checkpoint."""

    def __init__(self, run_dir: Path, config: dict[str, Any] | None = None, resumed: ResumePoint | None = None) -> None:
        run_dir = Path(run_dir)
        self.csv_path = run_dir / METRICS_FILE
        self.columns: list[str] | None = None
        if self.csv_path.is_file():
            with self.csv_path.open() as f:
                header = f.readline().strip()
            self.columns = header.split(",") if header else None
        if config is None and (run_dir / CONFIG_FILE).is_file():
            config = json.loads((run_dir / CONFIG_FILE).read_text())
        self.trackers: list[RunTracker] = open_trackers(run_dir, config or {}, resumed)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = ["step", *metrics]
            with self.csv_path.open("w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        row = {"step": step, **metrics}
        with self.csv_path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self.columns])
        for tracker in self.trackers:
            tracker.log(step, metrics)

    def histograms(self, step: int, values: dict[str, np.ndarray], prefix: str = "randomization") -> None:
        """One TensorBoard histogram per name (e.g. the randomisation values environments were reset with)."""
        for tracker in self.trackers:
            tracker.histograms(step, values, prefix)

    def flush(self) -> None:
        """What the trackers hold onto disk (metrics.csv is written row by row)."""
        for tracker in self.trackers:
            tracker.flush()

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """metrics.csv as a list of rows of floats (empty cells become NaN)."""
    with (Path(run_dir) / METRICS_FILE).open() as f:
        return [{k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]
