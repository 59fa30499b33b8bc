"""What ``robopg train`` prints when it ends: what was done, where the files are, and what to run next."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from robopg.logger import read_metrics
from robopg.tracking import where_tracked


def last_finite(rows: list[dict[str, float]], column: str) -> float:
    """The column's value in the last row that has one (iterations in which no episode ended log NaN)."""
    for row in reversed(rows):
        value = row.get(column, math.nan)
        if math.isfinite(value):
            return value
    return math.nan


def update_health(rows: list[dict[str, float]], threshold: float = 0.5) -> str | None:
    """One line when PPO's target-KL stop cut most updates short over the run's second half, else None.

    An update that the stop ends in its first epochs moved the policy further than ``target_kl`` allows on almost
    every iteration: the clip fraction is then high (0.55-0.6 in the fetch-push runs of docs/sim2real.md, section 8)
    and the deployed mean keeps moving. The line says so with the figures; docs/sim2real.md names what it measured."""
    late = [r for r in rows[len(rows) // 2:] if math.isfinite(r.get("epochs_stopped_early", math.nan))]
    if not late:
        return None
    stopped = sum(r["epochs_stopped_early"] for r in late) / len(late)
    if stopped < threshold:
        return None
    kl = sum(r.get("approx_kl", math.nan) for r in late) / len(late)
    clipped = sum(r.get("clip_fraction", math.nan) for r in late) / len(late)
    return (f"note: the target-KL stop ended {stopped:.0%} of the last {len(late)} updates early (mean KL {kl:.3f}, "
            f"clip fraction {clipped:.2f}): each update left the trust region; a lower --learning-rate or "
            "--lr-schedule adaptive keeps it inside (docs/sim2real.md, section 8)")


def train_summary(run_dir: Path, steps: int, seconds: float) -> str:
    """A few lines: steps, wall time, final success and return, the run's files and trackers, and the export /
    evaluate / plot commands for this run (paths quoted for the shell)."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir) if (run_dir / "metrics.csv").is_file() else []
    success, ret = last_finite(rows, "success_rate"), last_finite(rows, "episode_return")
    rate = f" ({steps / seconds:,.0f} steps/s)" if seconds > 0 else ""
    final = "final success n/a" if math.isnan(success) else f"final success {success:.2f}"
    if not math.isnan(ret):
        final += f", return {ret:.3f} (last iteration in which episodes ended)"
    run = shlex.quote(str(run_dir))
    policy = shlex.quote(str(run_dir / "policy.onnx"))
    checkpoint = "final.pt" if (run_dir / "final.pt").is_file() else "latest.pt"
    lines = [
        f"trained {steps:,} steps in {seconds:.1f} s{rate}; {final}",
        f"files in {run_dir}: {checkpoint} (policy, optimiser, RNG state), config.json, metrics.csv",
        *(f"  {line}" for line in where_tracked(run_dir)),
        *([health] if (health := update_health(rows)) else []),
        "next:",
        f"  robopg export {run} --out {policy}",
        f"  robopg evaluate {policy} --profile all --episodes 20",
        f"  robopg evaluate {policy} --episodes 2 --video {shlex.quote(str(run_dir / 'policy.mp4'))}",
        f"  robopg plot {run} --out {shlex.quote(str(run_dir / 'curves.png'))}",
    ]
    return "\n".join(lines)
