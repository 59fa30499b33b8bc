"""Metrics to ``metrics.csv`` (one row per iteration) and TensorBoard events in the run directory."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter


class MetricsLogger:
    """Appends rows to metrics.csv (columns fixed by the first row; a resumed run appends) and TensorBoard."""

    def __init__(self, run_dir: Path) -> None:
        self.csv_path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] | None = None
        if self.csv_path.is_file():
            with self.csv_path.open() as f:
                header = f.readline().strip()
            self.columns = header.split(",") if header else None
        self.tb = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = ["step", *metrics]
            with self.csv_path.open("w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        row = {"step": step, **metrics}
        with self.csv_path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(c, "") for c in self.columns])
        for key, value in metrics.items():
            self.tb.add_scalar(key, value, step)

    def histograms(self, step: int, values: dict[str, np.ndarray], prefix: str = "randomization") -> None:
        """One TensorBoard histogram per name (e.g. the randomisation values environments were reset with)."""
        for name, x in values.items():
            if len(x):
                self.tb.add_histogram(f"{prefix}/{name}", np.asarray(x, dtype=np.float64), step)

    def close(self) -> None:
        self.tb.close()


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """metrics.csv as a list of rows of floats (empty cells become NaN)."""
    with (Path(run_dir) / "metrics.csv").open() as f:
        return [{k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]
