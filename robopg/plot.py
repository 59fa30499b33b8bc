"""Learning curves of run directories and the heatmap of a transfer matrix (the optional extra robopg[plot]).

``robopg plot RUN_DIR [RUN_DIR ...] --out curves.png``: one panel per metrics.csv column asked for (success and
return by default), runs overlaid; runs whose config.json differ only in the seed (and in bookkeeping that
cannot change learning: trackers, checkpoint period, threads) are one group, drawn as the mean over seeds with
a +-1 std band. ADR runs add the coverage of their limits and a panel per parameter whose range moved, its
[low, high] over training. Each group keeps one colour in every panel.

matplotlib is used through ``matplotlib.figure.Figure`` (no pyplot, no global state, no display needed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robopg.logger import read_metrics
from robopg.tracking import CONFIG_FILE, flatten

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from robopg.evaluate import TransferMatrix

DEFAULT_METRICS = ("success_rate", "episode_return")
# Fields that never change a learning curve, so runs that differ only in them (and the seed) are one group.
BOOKKEEPING = {"run.seed", "run.logger", "run.project", "run.wandb_mode", "run.mlflow_tracking_uri",
               "run.checkpoint_every", "run.torch_threads"}
PANEL_INCHES = (6.4, 3.6)
LEGEND_ROW_INCHES = 0.4
DPI = 100
TITLES = {"success_rate": "success rate", "episode_return": "episode return", "episode_length": "episode length",
          "adr_coverage": "ADR: mean fraction of each limit range covered"}
EXTRA_HINT = "Fix: pip install 'robopg[plot]' (matplotlib)"


class XAxis(StrEnum):
    STEPS = "steps"  # environment steps (metrics.csv's step column)
    MINUTES = "minutes"  # training time: collect + update seconds summed over iterations


@dataclass(frozen=True)
class Run:
    path: Path
    config: dict[str, Any]
    rows: list[dict[str, float]]

    def column(self, name: str) -> np.ndarray:
        """(rows,) float64; NaN where the row has no value."""
        return np.array([row.get(name, np.nan) for row in self.rows], dtype=np.float64)

    def x(self, axis: XAxis) -> np.ndarray:
        if axis is XAxis.STEPS:
            return self.column("step")
        seconds = self.column("collect_seconds") + self.column("update_seconds")
        if not np.isfinite(seconds).all():
            raise ValueError(f"{self.path}/metrics.csv has no collect_seconds/update_seconds in every row. "
                             "Fix: plot with --x steps")
        return np.cumsum(seconds) / 60.0


@dataclass(frozen=True)
class Group:
    """Runs of one configuration (seeds); ``label`` names it in the legend."""

    runs: list[Run]
    label: str

    def curve(self, axis: XAxis, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, mean and std over the group's runs of column ``name``, row by row up to the shortest run (one
        configuration logs at the same steps); rows where no run has a value are dropped. Each (rows,)."""
        length = min(len(run.rows) for run in self.runs)
        xs = np.stack([run.x(axis)[:length] for run in self.runs])
        ys = np.stack([run.column(name)[:length] for run in self.runs])
        keep = np.isfinite(ys).any(axis=0)
        with np.errstate(invalid="ignore"):
            # all-NaN columns were dropped above, so the nan-reductions see at least one value
            return xs.mean(axis=0)[keep], np.nanmean(ys[:, keep], axis=0), np.nanstd(ys[:, keep], axis=0)


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not (path / "metrics.csv").is_file():
        raise FileNotFoundError(f"{path} has no metrics.csv. Fix: pass run directories made by robopg train")
    config_path = path / CONFIG_FILE
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    rows = read_metrics(path)
    if not rows:
        raise ValueError(f"{path}/metrics.csv has no rows yet. Fix: plot it after its first iteration")
    return Run(path, config, rows)


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs with equal configs (bookkeeping and seed aside) in one group, in the order they were given.

    Labels: the config fields that tell the groups apart (up to three, e.g. "randomization=none"), else the
    run directory's name; a group of several runs adds "(mean +- std, n seeds)"."""
    keys: list[tuple] = []
    members: dict[tuple, list[Run]] = {}
    for run in runs:
        flat = {k: v for k, v in flatten(run.config).items() if k not in BOOKKEEPING}
        key = tuple(sorted((k, json.dumps(v)) for k, v in flat.items()))
        if key not in members:
            keys.append(key)
            members[key] = []
        members[key].append(run)
    configs = [dict(key) for key in keys]
    differing = sorted({k for c in configs for k in c if len({json.dumps(o.get(k)) for o in configs}) > 1})
    groups = []
    for key, config in zip(keys, configs, strict=True):
        group = members[key]
        fields = ", ".join(f"{k}={json.loads(config[k]) if k in config else '-'}" for k in differing)
        if len(group) == 1:
            label = group[0].path.name + (f" ({fields})" if 0 < len(differing) <= 3 else "")
        else:
            name = fields if 0 < len(differing) <= 3 else re.sub(r"[_-]?(seed|s)[_-]?\d+$", "", group[0].path.name)
            label = f"{name} (mean +- std, {len(group)} seeds)"
        groups.append(Group(group, label))
    return groups


def moved_adr_parameters(runs: list[Run]) -> list[str]:
    """ADR parameters (adr_<name>_low/high columns) whose range moved in at least one run; the others sat at
    their nominal value throughout and would only repeat a flat line."""
    moved = set()
    for run in runs:
        for column in run.rows[0]:
            if column.startswith("adr_") and column.endswith(("_low", "_high")):
                values = run.column(column)
                if np.nanmax(values) > np.nanmin(values):
                    moved.add(column[4:].rsplit("_", 1)[0])
    return sorted(moved)


def figure_pixels(panels: int, groups: int) -> tuple[int, int]:
    """Width and height in pixels of a curves figure: two panels per row, a legend row per three groups."""
    cols = min(2, panels)
    rows = -(-panels // cols)
    legend_rows = -(-groups // 3)
    return (round(cols * PANEL_INCHES[0] * DPI),
            round((rows * PANEL_INCHES[1] + legend_rows * LEGEND_ROW_INCHES) * DPI))


def _figure(width_px: int, height_px: int) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError(f"plotting needs matplotlib. {EXTRA_HINT}") from None
    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")


def plot_runs(run_dirs: list[str | Path], out: str | Path, x: XAxis = XAxis.STEPS,
              metrics: list[str] | None = None) -> list[str]:
    """Write the curves of ``run_dirs`` to ``out`` (PNG, or any format matplotlib knows by the suffix).

    metrics: metrics.csv columns, one panel each (default: success_rate and episode_return, those present).
    Returns the legend's labels, one per group."""
    runs = [load_run(d) for d in run_dirs]
    groups = group_runs(runs)
    columns = {c for run in runs for c in run.rows[0]}
    if metrics:
        unknown = [m for m in metrics if m not in columns]
        if unknown:
            raise ValueError(f"--metrics {unknown}: no such metrics.csv column in these runs. Fix: pick from "
                             f"{sorted(columns - {'step'})}")
    else:
        metrics = [m for m in DEFAULT_METRICS if m in columns]
        if "adr_coverage" in columns:
            metrics.append("adr_coverage")
    adr = moved_adr_parameters(runs)
    panels = len(metrics) + len(adr)
    width, height = figure_pixels(panels, len(groups))
    fig = _figure(width, height)
    cols = min(2, panels)
    axes = fig.subplots(-(-panels // cols), cols, squeeze=False).ravel()
    colours = [f"C{i % 10}" for i in range(len(groups))]
    x_label = "environment steps" if x is XAxis.STEPS else "training minutes (collect + update)"
    for ax, name in zip(axes, metrics, strict=False):
        for group, colour in zip(groups, colours, strict=True):
            _draw_mean_band(ax, *group.curve(x, name), colour, group.label)
        _style(ax, TITLES.get(name, name), x_label)
        if name in ("success_rate", "adr_coverage"):
            ax.set_ylim(-0.03, 1.03)
    for ax, param in zip(axes[len(metrics):], adr, strict=False):
        for group, colour in zip(groups, colours, strict=True):
            xs, low, _ = group.curve(x, f"adr_{param}_low")
            _, high, _ = group.curve(x, f"adr_{param}_high")
            ax.fill_between(xs, low, high, color=colour, alpha=0.25, linewidth=0, label=group.label)
            ax.plot(xs, low, color=colour, linewidth=1)
            ax.plot(xs, high, color=colour, linewidth=1)
        _style(ax, f"ADR range of {param}", x_label)
    for ax in axes[panels:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(groups)), frameon=False)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return [t.get_text() for t in fig.legends[0].get_texts()]


def _draw_mean_band(ax: Axes, xs: np.ndarray, mean: np.ndarray, std: np.ndarray, colour: str, label: str) -> None:
    ax.plot(xs, mean, color=colour, linewidth=1.6, label=label)
    if np.any(std > 0):
        ax.fill_between(xs, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)


def _style(ax: Axes, title: str, x_label: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(x_label)
    ax.grid(True, alpha=0.3)


def plot_matrix(matrix: TransferMatrix, out: str | Path) -> None:
    """Heatmap of success rate (mean return for tasks without success), one row per file, one column per
    profile, each cell labelled with its value and its safe-action fallbacks."""
    from robopg.evaluate import profile_label

    has_success = all(r.success_rate is not None for row in matrix.results for r in row)
    values = np.array([[r.success_rate if has_success else r.mean_return for r in row] for row in matrix.results])
    fallbacks = np.array([[r.fallbacks for r in row] for row in matrix.results])
    profiles = [profile_label(p) for p in matrix.profiles]
    policies = [Path(p).name for p in matrix.policies]
    fig = _figure(round((2.5 + 1.0 * len(profiles)) * DPI), round((1.8 + 0.55 * len(policies)) * DPI))
    ax = fig.subplots()
    limits = {"vmin": 0.0, "vmax": 1.0} if has_success else {}
    image = ax.imshow(values, cmap="RdYlGn" if has_success else "viridis", aspect="auto", **limits)
    ax.set_xticks(range(len(profiles)), profiles, rotation=30, ha="right")
    ax.set_yticks(range(len(policies)), policies)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = f"{values[i, j]:.2f}" + (f"\n{fallbacks[i, j]} fb" if fallbacks[i, j] else "")
            dark = has_success and not 0.25 <= values[i, j] <= 0.8  # the colormap's dark ends
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    episodes = matrix.results[0][0].episodes
    ax.set_title(f"{'success rate' if has_success else 'mean return'} per reality profile "
                 f"({episodes} episodes each; fb: safe-action fallbacks)", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
